import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import {
  createLlmdStickyPicker,
  llmdStickyOptionsSchema,
} from '../../../../src/balancer/pickers/llm-d-sticky.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { hold, makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { assertHonoursExclusions, countIds, llmCtx, routeTo, text } from './llm-fixtures.ts'

const create = (options: Record<string, unknown> = {}, seed = 1): Picker =>
  createLlmdStickyPicker(llmdStickyOptionsSchema.parse({ explorationProbability: 0, ...options }), {
    clock: createManualClock(),
    random: createSeededRandom(seed),
  })

/** Uncached prompt tokens in flight on the endpoint, as the proxy's leases would hold them. */
function queuePrefill(endpoint: Endpoint, tokens: number): void {
  endpoint.begin({ prefillTokens: tokens })
}

describe('llm-d-sticky picker', () => {
  it('has llm-d’s shipped defaults: threshold 0.80, 1% exploration, τ = 15,928 tok/s × 18 s', () => {
    assert.deepEqual(llmdStickyOptionsSchema.parse({}), {
      blockSizeChars: 64,
      maxPrefixBlocks: 8_192,
      lruCapacityPerServer: 31_250,
      autoTune: true,
      affinityThreshold: 0.8,
      explorationProbability: 0.01,
      maxTtftPenaltyMs: 18_000,
      peakPrefillTokensPerSec: 15_928,
      queueThresholdTokens: 4_194_304,
    })
  })

  it('keeps a request on the endpoint holding its prefix though another has less queued', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const prompt = text('sys', 640)
    routeTo(picker, eligible, eligible[0]!, prompt)
    queuePrefill(eligible[0]!, 10_000)
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[0])
  })

  it('counts as sticky from a prefix score of 0.80: 4 of 5 blocks sticks, 3 of 4 does not', () => {
    for (const [heldBlocks, totalBlocks, expected] of [
      [4, 5, 'e0'],
      [3, 4, 'e1'],
    ] as const) {
      const picker = create()
      const eligible = makeEndpoints([1, 1])
      const held = text('held', heldBlocks * 64)
      const tail = (totalBlocks - heldBlocks) * 64
      routeTo(picker, eligible, eligible[0]!, held + text('x', tail))
      queuePrefill(eligible[0]!, 1_000)
      const pick = picker.pick(eligible, llmCtx(held + text('y', tail)))
      assert.equal(pick?.id, expected, `${heldBlocks}/${totalBlocks}`)
    }
  })

  it('skips the affinity filter for explorationProbability of requests', () => {
    const prompt = text('sys', 640)
    const explored = (probability: number, trials: number): number => {
      let count = 0
      for (let seed = 0; seed < trials; seed++) {
        const picker = create({ explorationProbability: probability }, seed)
        const eligible = makeEndpoints([1, 1])
        routeTo(picker, eligible, eligible[0]!, prompt)
        queuePrefill(eligible[0]!, 10_000)
        if (picker.pick(eligible, llmCtx(prompt)) === eligible[1]) count++
      }
      return count
    }
    const at1Percent = explored(0.01, 4_000)
    assert.ok(at1Percent >= 20 && at1Percent <= 65, `${at1Percent} of 4000 explored, about 40`)
    assert.equal(explored(0, 200), 0)
    assert.equal(explored(1, 200), 200)
  })

  it('breaks stickiness once the warm endpoint is more than τ = R_peak × T_max tokens behind', () => {
    const prompt = text('sys', 640)
    // 15,928 tok/s × 18 s = 286,704 tokens of uncached prefill ahead of the request.
    for (const [warm, cold, expected] of [
      [286_704, 0, 'e0'],
      [286_705, 0, 'e1'],
      [386_704, 100_000, 'e0'],
      [386_705, 100_000, 'e1'],
    ] as const) {
      const picker = create()
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[0]!, prompt)
      queuePrefill(eligible[0]!, warm)
      queuePrefill(eligible[1]!, cold)
      assert.equal(picker.pick(eligible, llmCtx(prompt))?.id, expected, `${warm} vs ${cold}`)
    }
  })

  it('takes τ from peakPrefillTokensPerSec and maxTtftPenaltyMs; a penalty of 0 always sticks', () => {
    const prompt = text('sys', 640)
    const pickWith = (options: Record<string, unknown>, warm: number): string | undefined => {
      const picker = create(options)
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[0]!, prompt)
      queuePrefill(eligible[0]!, warm)
      return picker.pick(eligible, llmCtx(prompt))?.id
    }
    const tight = { peakPrefillTokensPerSec: 1_000, maxTtftPenaltyMs: 2_000 }
    assert.equal(pickWith(tight, 2_000), 'e0')
    assert.equal(pickWith(tight, 2_001), 'e1')
    assert.equal(pickWith({ maxTtftPenaltyMs: 0 }, 10_000_000), 'e0')
  })

  it('scores the kept endpoints by in-flight plus this request’s uncached tokens', () => {
    const held = text('held', 320)
    const prompt = held + text('y', 320) // 160 tokens; e0 holds half of its blocks
    for (const [queued, expected] of [
      [79, 'e0'], // 79 + 80 < 160
      [81, 'e1'], // 81 + 80 > 160
    ] as const) {
      const picker = create()
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[0]!, held + text('x', 320))
      queuePrefill(eligible[0]!, queued)
      assert.equal(picker.pick(eligible, llmCtx(prompt))?.id, expected, `${queued} queued`)
    }
  })

  it('among sticky endpoints picks the one with the least prefill in flight', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('sys', 640)
    routeTo(picker, eligible, eligible[0]!, prompt)
    routeTo(picker, eligible, eligible[1]!, prompt)
    queuePrefill(eligible[0]!, 500)
    queuePrefill(eligible[1]!, 300)
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[1])
  })

  it('tells the proxy the uncached prompt tokens to hold on the chosen endpoint', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const held = text('held', 320)
    routeTo(picker, eligible, eligible[0]!, held + text('x', 320))
    queuePrefill(eligible[1]!, 1_000)
    const ctx = llmCtx(held + text('y', 320), { maxTokens: 500 })
    const chosen = picker.pick(eligible, ctx)!
    assert.equal(chosen, eligible[0])
    // Half the 160-token prompt is uncached here; KV holds the prompt plus the max_tokens cap.
    assert.deepEqual(picker.leaseCost!(chosen, ctx), { prefillTokens: 80, kvTokens: 660 })
    assert.equal(picker.leaseCost!(eligible[1]!, ctx), undefined)
    assert.equal(picker.leaseCost!(chosen, llmCtx(held)), undefined)
    // Held until the first token, then released: the proxy's lease drives the count.
    const lease = chosen.begin(picker.leaseCost!(chosen, ctx))
    assert.equal(chosen.pendingPrefillTokens, 80)
    lease.firstToken()
    assert.equal(chosen.pendingPrefillTokens, 0)
  })

  it('ignores an excluded sticky endpoint', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('sys', 640)
    routeTo(picker, eligible, eligible[0]!, prompt)
    queuePrefill(eligible[1]!, 5)
    assert.equal(picker.pick(eligible, llmCtx(prompt, {}, ['e0'])), eligible[2])
  })

  it('scopes prefixes by model', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const prompt = text('sys', 640)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama', servedModel: 'llama' })
    queuePrefill(eligible[0]!, 1_000)
    assert.equal(
      picker.pick(eligible, llmCtx(prompt, { model: 'qwen', servedModel: 'qwen' })),
      eligible[1],
    )
  })

  it('sends a request without an LLM body to the fewest in-flight requests, ties at random', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    hold(eligible[0]!, 2)
    const counts = countIds(picker, eligible, 2_000, () => ({ attempt: 0 }))
    assert.equal(counts.get('e0'), undefined)
    assert.ok(Math.abs(counts.get('e1')! - 1_000) < 100)
  })

  it('never returns an excluded endpoint, and always returns one while any is left', () => {
    assertHonoursExclusions(create())
    assertHonoursExclusions(create({ explorationProbability: 0.3, maxTtftPenaltyMs: 10 }))
  })
})
