import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { request } from 'undici'
import { createEngine, type EngineRequest } from '../../../src/sim/engine.ts'
import { createEngineMetrics } from '../../../src/sim/engine-metrics.ts'
import { startEngineServer } from '../../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../../src/sim/profiles.ts'
import { createSglangEngineMetrics } from '../../../src/sim/sglang-metrics.ts'
import { promptIdentity } from '../../../src/sim/sim-tokenizer.ts'
import { createManualClock, type ManualClock } from '../../../src/util/manual-clock.ts'
import { parseEngineMetrics } from '../../helpers/engine-metrics.ts'

/** Two sequences at a time and 100 blocks of 16 tokens, so a few prompts queue and fill the KV. */
const SMALL: EngineProfile = {
  ...H100_LLAMA3_8B,
  name: 'h100-small',
  maxNumSeqs: 2,
  numGpuBlocks: 100,
}
const MODEL = SMALL.modelName

/** A prompt of `tokens` words led by `salt`: prompts of one salt share every block. */
function prompt(tokens: number, salt: string, maxTokens: number): EngineRequest {
  return { ...promptIdentity(Array.from({ length: tokens }, (_, i) => `${salt}${i}`)), maxTokens }
}

/** An engine on a manual clock whose `/metrics` speaks SGLang, with vLLM's read off it as well. */
function sglangEngine() {
  const clock = createManualClock()
  const sglang = createSglangEngineMetrics({ profile: SMALL, modelName: MODEL }, () =>
    engine.stats(),
  )
  const vllm = createEngineMetrics({ profile: SMALL, modelName: MODEL }, () => engine.stats())
  const engine = createEngine({ profile: SMALL, seed: 1 }, { clock, observer: sglang.observer })
  return { clock, engine, sglang: sglang.registry, vllm: vllm.registry }
}

/** Runs timers until `until` holds or the engine idles. */
function advance(clock: ManualClock, until: () => boolean = () => false): void {
  while (!until() && clock.runNext()) {}
}

/** One sample's value, labelled with the model only. */
function sampleOf(text: string, name: string): number {
  const prefix = `${name}{model_name="${MODEL}"} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  assert.ok(line, `${name} in\n${text}`)
  return Number(line.slice(prefix.length))
}

describe('the simulator’s SGLang metrics dialect', () => {
  it('exposes SGLang’s load gauges, counters and KV pool size, and no vLLM names', async () => {
    const { clock, engine, sglang } = sglangEngine()
    for (let i = 0; i < 5; i++) engine.submit(prompt(300, `p${i}-`, 50), {})
    advance(clock, () => engine.stats().generationTokens > 0)
    const stats = engine.stats()
    assert.ok(stats.running === 2 && stats.waiting === 3, JSON.stringify(stats))
    const text = await sglang.metrics()
    assert.equal(sampleOf(text, 'sglang:num_running_reqs'), 2)
    assert.equal(sampleOf(text, 'sglang:num_queue_reqs'), 3)
    assert.equal(sampleOf(text, 'sglang:token_usage'), stats.kvCacheUsage)
    // Block 0 is the null block: 99 usable blocks of 16 tokens.
    assert.equal(sampleOf(text, 'sglang:max_total_num_tokens'), 99 * 16)
    assert.equal(sampleOf(text, 'sglang:num_used_tokens'), (99 - stats.numFreeBlocks) * 16)
    assert.equal(sampleOf(text, 'sglang:prompt_tokens_total'), stats.prefixCacheQueries)
    assert.equal(sampleOf(text, 'sglang:cached_tokens_total'), stats.prefixCacheHits)
    assert.equal(sampleOf(text, 'sglang:num_retracted_requests_total'), stats.preemptions)
    assert.equal(sampleOf(text, 'sglang:generation_tokens_total'), stats.generationTokens)
    assert.doesNotMatch(text, /^vllm:/m)
    for (const histogram of [
      'sglang:time_to_first_token_seconds',
      'sglang:inter_token_latency_seconds',
      'sglang:e2e_request_latency_seconds',
      'aya_sim_step_lateness_seconds',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${histogram} histogram$`, 'm'))
    }
  })

  it('reads to Aya as the same load as the vLLM names, the KV pool in pages of one token', async () => {
    const { clock, engine, sglang, vllm } = sglangEngine()
    for (let i = 0; i < 4; i++) engine.submit(prompt(200, 'shared-', 40), {})
    engine.submit(prompt(200, 'other-', 40), {})
    advance(clock, () => engine.stats().prefixCacheHits > 0)
    const fromSglang = parseEngineMetrics(await sglang.metrics(), 0)
    const fromVllm = parseEngineMetrics(await vllm.metrics(), 0)
    assert.ok(fromSglang && fromVllm)
    assert.ok(fromVllm.waiting! > 0 && fromVllm.kvUsage! > 0, JSON.stringify(fromVllm))
    assert.ok((fromVllm.prefixHitsTotal ?? 0) > 0, 'the shared prompts hit')
    const load = ({
      running,
      waiting,
      kvUsage,
      prefixQueriesTotal,
      prefixHitsTotal,
    }: typeof fromVllm) => ({
      running,
      waiting,
      kvUsage,
      prefixQueriesTotal,
      prefixHitsTotal,
    })
    assert.deepEqual(load(fromSglang), load(fromVllm))
    assert.deepEqual([fromSglang.blockSize, fromSglang.numGpuBlocks], [1, 99 * 16])
    assert.deepEqual([fromVllm.blockSize, fromVllm.numGpuBlocks], [16, 100])
  })

  it('gives the cache hit rate of the prompts admitted since the last scrape, 0 when none were', async () => {
    const { clock, engine, sglang } = sglangEngine()
    engine.submit(prompt(320, 'doc-', 1), {})
    advance(clock)
    assert.equal(sampleOf(await sglang.metrics(), 'sglang:cache_hit_rate'), 0, 'cold')
    // The same 320 tokens again: 19 of its 20 blocks hit (the last token is always computed).
    engine.submit(prompt(320, 'doc-', 1), {})
    advance(clock)
    assert.equal(sampleOf(await sglang.metrics(), 'sglang:cache_hit_rate'), 304 / 320)
    assert.equal(sampleOf(await sglang.metrics(), 'sglang:cache_hit_rate'), 0, 'nothing admitted')
  })

  it('is what an engine server started with metricsDialect sglang serves; vLLM’s stays the default', async (t) => {
    const clock = createManualClock()
    const sglangServer = await startEngineServer(
      { profile: SMALL, metricsDialect: 'sglang' },
      { clock },
    )
    t.after(() => sglangServer.close())
    const vllmServer = await startEngineServer({ profile: SMALL }, { clock })
    t.after(() => vllmServer.close())
    const sglangText = await (await request(`${sglangServer.url}/metrics`)).body.text()
    assert.equal(sampleOf(sglangText, 'sglang:num_queue_reqs'), 0)
    assert.doesNotMatch(sglangText, /^vllm:/m)
    const vllmText = await (await request(`${vllmServer.url}/metrics`)).body.text()
    assert.match(vllmText, /^vllm:num_requests_waiting\{model_name=".*",engine="0"\} 0$/m)
    assert.doesNotMatch(vllmText, /^sglang:/m)
  })
})
