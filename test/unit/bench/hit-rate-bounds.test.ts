import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { computeHitRateBounds } from '../../../src/bench/hit-rate-bounds.ts'
import { kvBlockKeys } from '../../../src/bench/prefix-chain.ts'
import { createPromptBuilder } from '../../../src/bench/prompt-builder.ts'
import { loadTrace } from '../../../src/bench/trace-loader.ts'
import type { TraceRequest } from '../../../src/bench/trace-request.ts'
import { createEngine } from '../../../src/sim/engine.ts'
import { H100_LLAMA3_8B } from '../../../src/sim/profiles.ts'
import { chatPromptIdentity } from '../../../src/sim/sim-tokenizer.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { TRACE_FILES, tracePath } from './shared-traces.ts'

const req = (
  id: number,
  inputTokens: number,
  hashIds?: number[],
  outputTokens = 1,
): TraceRequest => ({
  id,
  atMs: id,
  inputTokens,
  outputTokens,
  hashIds,
})

async function mooncakeSlice(count: number, lengthScale = 0.25): Promise<readonly TraceRequest[]> {
  const trace = await loadTrace(tracePath(TRACE_FILES.mooncakeConversation), {
    maxModelLen: 131_072,
    lengthScale,
    limit: count,
  })
  return trace.requests
}

/** The ideal rate by brute force: the simulator's own block hashes of the real prompt text. */
function bruteForceIdeal(requests: readonly TraceRequest[], blockTokens: number): number {
  const prompts = createPromptBuilder({ seed: 1, blockTokens })
  const seen = new Set<number>()
  let hits = 0
  let total = 0
  for (const r of requests) {
    const { promptBlockHashes, promptTokens } = chatPromptIdentity(prompts.messages(r), 16)
    const cap = Math.floor((promptTokens - 1) / 16)
    let h = 0
    while (h < Math.min(cap, promptBlockHashes.length) && seen.has(promptBlockHashes[h]!)) h++
    hits += h * 16
    total += promptTokens
    for (const hash of promptBlockHashes) seen.add(hash)
  }
  return hits / total
}

describe('prefix hit-rate bounds', () => {
  it('counts whole KV blocks, capped at the prompt length minus one', () => {
    // 1 role token + 16 words: a repeat hits 16 of 17 tokens in blocks of 4.
    const twice = [req(0, 17, [1, 2]), req(1, 17, [1, 2])]
    const bounds = computeHitRateBounds(twice, {
      blockTokens: 8,
      kvBlockTokens: 4,
      capacityBlocks: 100,
    })
    assert.equal(bounds.idealPrefixHitRate, 16 / 34)
    assert.equal(bounds.lruBoundPrefixHitRate, 16 / 34)
    assert.equal(bounds.cacheDemandTokens, 34 - 16)
    // Sharing only the first id: 1 + 8 common tokens → 2 blocks of 4.
    const fork = [req(0, 17, [1, 2]), req(1, 17, [1, 3])]
    assert.equal(
      computeHitRateBounds(fork, { blockTokens: 8, kvBlockTokens: 4, capacityBlocks: 100 })
        .idealPrefixHitRate,
      8 / 34,
    )
  })

  it('is zero for traces without prefix information', () => {
    const rows = [req(0, 500), req(1, 500)]
    const bounds = computeHitRateBounds(rows, {
      blockTokens: undefined,
      kvBlockTokens: 16,
      capacityBlocks: 1e6,
    })
    assert.equal(bounds.idealPrefixHitRate, 0)
    assert.equal(bounds.lruBoundPrefixHitRate, 0)
  })

  it('LRU-evicts: a small cache forgets, and generated blocks take room too', () => {
    const rows = [req(0, 33, [1, 2, 3, 4]), req(1, 33, [5, 6, 7, 8], 40), req(2, 33, [1, 2, 3, 4])]
    const big = computeHitRateBounds(rows, {
      blockTokens: 8,
      kvBlockTokens: 4,
      capacityBlocks: 1000,
    })
    const small = computeHitRateBounds(rows, {
      blockTokens: 8,
      kvBlockTokens: 4,
      capacityBlocks: 12,
    })
    assert.equal(big.lruBoundPrefixHitRate, big.idealPrefixHitRate)
    assert.equal(small.lruBoundPrefixHitRate, 0)
    assert.equal(small.idealPrefixHitRate, big.idealPrefixHitRate)
  })

  it('KV block keys match the simulator’s hashes of the real text', async () => {
    const requests = (await mooncakeSlice(120)).slice(0, 120)
    const prompts = createPromptBuilder({ seed: 1, blockTokens: 128 })
    let unique = 0
    const keyOf = new Map<number, number>()
    for (const r of requests) {
      const keys = kvBlockKeys(r, 128, 16, () => --unique)
      const { promptBlockHashes } = chatPromptIdentity(prompts.messages(r), 16)
      assert.equal(keys.length, promptBlockHashes.length)
      for (const [p, key] of keys.entries()) {
        const hash = promptBlockHashes[p]!
        if (key < 0) continue
        if (keyOf.has(key)) assert.equal(keyOf.get(key), hash, `row ${r.id} block ${p}`)
        keyOf.set(key, hash)
      }
    }
    assert.equal(new Set(keyOf.values()).size, keyOf.size, 'distinct keys, distinct blocks')
  })

  it('ideal equals brute force over real prompt text, and an infinite LRU equals ideal', async () => {
    const requests = await mooncakeSlice(300)
    const bounds = computeHitRateBounds(requests, {
      blockTokens: 128,
      kvBlockTokens: 16,
      capacityBlocks: 1e9,
    })
    assert.ok(bounds.idealPrefixHitRate > 0.05)
    assert.equal(bounds.idealPrefixHitRate, bruteForceIdeal(requests, 128))
    assert.equal(bounds.lruBoundPrefixHitRate, bounds.idealPrefixHitRate)
  })

  it('ideal equals what one engine with ample KV reports when requests run one at a time', async () => {
    const requests = await mooncakeSlice(80)
    const clock = createManualClock()
    const engine = createEngine(
      { profile: { ...H100_LLAMA3_8B, numGpuBlocks: 400_000 } },
      { clock },
    )
    const prompts = createPromptBuilder({ seed: 1, blockTokens: 128 })
    for (const r of requests) {
      let done = false
      engine.submit(
        { ...chatPromptIdentity(prompts.messages(r), 16), outputTokens: 2, maxTokens: 64 },
        { onDone: () => (done = true) },
      )
      while (!done && clock.runNext()) {}
    }
    const stats = engine.stats()
    const bounds = computeHitRateBounds(requests, {
      blockTokens: 128,
      kvBlockTokens: 16,
      capacityBlocks: 1e9,
    })
    assert.equal(stats.prefixCacheHits / stats.prefixCacheQueries, bounds.idealPrefixHitRate)
    engine.close()
  })

  it('reproduces the README’s ideal prefix hit for both Mooncake traces', async () => {
    for (const [file, expected] of [
      [TRACE_FILES.mooncakeConversation, 0.358],
      [TRACE_FILES.mooncakeSynthetic, 0.462],
    ] as const) {
      const trace = await loadTrace(tracePath(file), { maxModelLen: 1e9, lengthScale: 0.25 })
      const bounds = computeHitRateBounds(trace.requests, {
        blockTokens: trace.blockTokens,
        kvBlockTokens: 16,
        capacityBlocks: 4 * 26_899,
      })
      assert.ok(
        Math.abs(bounds.idealPrefixHitRate - expected) < 0.005,
        `${file}: ${bounds.idealPrefixHitRate}`,
      )
      assert.ok(bounds.lruBoundPrefixHitRate < bounds.idealPrefixHitRate)
    }
  })
})
