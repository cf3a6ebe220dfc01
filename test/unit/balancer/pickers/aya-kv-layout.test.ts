import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import type { AyaDecision } from '../../../../src/balancer/pickers/aya-decision.ts'
import { ayaOptionsSchema } from '../../../../src/balancer/pickers/aya-options.ts'
import type { EngineMetricsSource, EngineSnapshot } from '../../../../src/llm/engine-snapshot.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { parseEngineMetrics } from '../../../helpers/engine-metrics.ts'
import {
  candidatesOf,
  createAya,
  engineMetrics,
  llmCtx,
  recordDecisions,
  routeTo,
  text,
} from './llm-fixtures.ts'

// Prompts here are estimated at 4 characters a token, so the index's 64-character block is 16
// tokens and a 640-character prompt is 10 blocks (160 tokens). A prompt held whole is a hit of all
// but its last token, which the engine always computes.
const HELD = 159

/** An idle vLLM engine's /metrics, as vLLM V1 writes its cache_config_info info gauge. */
function vllmMetrics(layout?: { blockSize: number; numGpuBlocks: number }): string {
  const lines = [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    'vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0',
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    'vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0',
    '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
    '# TYPE vllm:kv_cache_usage_perc gauge',
    'vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0',
  ]
  if (layout) {
    lines.push(
      '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
      '# TYPE vllm:cache_config_info gauge',
      `vllm:cache_config_info{block_size="${layout.blockSize}",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="${layout.numGpuBlocks}"} 1.0`,
    )
  }
  return lines.join('\n')
}

/** Each endpoint's last /metrics text, parsed as the scraper parses it. */
function scraped(texts: Record<string, string>): Record<string, EngineSnapshot> {
  const snapshots: Record<string, EngineSnapshot> = {}
  for (const [id, body] of Object.entries(texts)) {
    const snapshot = parseEngineMetrics(body, 0)
    assert.ok(snapshot, id)
    snapshots[id] = snapshot
  }
  return snapshots
}

const create = (engineMetrics: EngineMetricsSource, options: Record<string, unknown> = {}) =>
  createAya(options, { engineMetrics }, 3)

/**
 * Routes prompts A, B and C (10 blocks each) to every endpoint in turn, then returns how many
 * tokens of A each endpoint's index still holds, as the scheduler's decision reports them.
 */
function heldAfterThreePrompts(picker: Picker, endpoints: number): Map<string, number> {
  const eligible = makeEndpoints(Array.from({ length: endpoints }, () => 1))
  const prompts = ['A', 'B', 'C'].map((seed) => text(seed, 640))
  for (const endpoint of eligible) {
    for (const prompt of prompts) routeTo(picker, eligible, endpoint, prompt)
  }
  const candidates = candidatesOf(picker, eligible, llmCtx(prompts[0]!))
  return new Map(candidates.map((c) => [c.endpoint, c.hitTokens]))
}

describe('aya picker: prefix index sized from vllm:cache_config_info', () => {
  it('holds num_gpu_blocks × block_size tokens per endpoint', () => {
    // 20 blocks of 16 tokens, or 10 of 32, are 320 tokens: two prompts fit, the first of three
    // is evicted. 40 of 16 or 20 of 32 are 640: all three fit.
    const picker = create(
      engineMetrics(
        scraped({
          e0: vllmMetrics({ blockSize: 16, numGpuBlocks: 20 }),
          e1: vllmMetrics({ blockSize: 32, numGpuBlocks: 10 }),
          e2: vllmMetrics({ blockSize: 16, numGpuBlocks: 40 }),
          e3: vllmMetrics({ blockSize: 32, numGpuBlocks: 20 }),
        }),
      ),
    )
    const held = heldAfterThreePrompts(picker, 4)
    assert.deepEqual(Object.fromEntries(held), { e0: 0, e1: 0, e2: HELD, e3: HELD })
  })

  it('falls back to defaultKvCapacityTokens for an engine that publishes no layout', () => {
    const metrics = engineMetrics(scraped({ e0: vllmMetrics(), e1: vllmMetrics() }))
    assert.equal(metrics.kvLayout('e0'), undefined)
    assert.deepEqual(Object.fromEntries(heldAfterThreePrompts(create(metrics), 2)), {
      e0: HELD,
      e1: HELD,
    })
    const small = create(metrics, { defaultKvCapacityTokens: 320 })
    assert.deepEqual(Object.fromEntries(heldAfterThreePrompts(small, 2)), { e0: 0, e1: 0 })
  })

  it('resizes an endpoint’s index when its layout arrives after its first requests', () => {
    const snapshots = scraped({ e0: vllmMetrics() })
    const picker = create(engineMetrics(snapshots))
    const eligible = makeEndpoints([1, 1])
    routeTo(picker, eligible, eligible[0]!, text('A', 640))
    routeTo(picker, eligible, eligible[0]!, text('B', 640))
    // The engine's first scrape: 20 blocks of 16 tokens, room for two prompts.
    Object.assign(snapshots, scraped({ e0: vllmMetrics({ blockSize: 16, numGpuBlocks: 20 }) }))
    routeTo(picker, eligible, eligible[0]!, text('C', 640))
    const recorder = recordDecisions()
    try {
      picker.pick(eligible, llmCtx(text('A', 640)))
      picker.pick(eligible, llmCtx(text('C', 640)))
    } finally {
      recorder.stop()
    }
    const { decisions } = recorder
    const hitOnE0 = (d: AyaDecision) => d.candidates.find((c) => c.endpoint === 'e0')?.hitTokens
    assert.equal(hitOnE0(decisions[0]!), 0, 'A was evicted when the index shrank')
    assert.equal(hitOnE0(decisions[1]!), HELD, 'C is held')
  })

  it('refuses a prefix hashed past 65,536 blocks a prompt', () => {
    assert.equal(ayaOptionsSchema.safeParse({ maxPrefixBlocks: 100_000 }).success, false)
    assert.equal(ayaOptionsSchema.safeParse({ maxPrefixBlocks: 65_536 }).success, true)
  })
})
