import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { UpstreamGroup } from '../../../src/balancer/upstream-group.ts'
import { createPrefillPacer } from '../../../src/llm/prefill-pacer.ts'
import { type AyaMetrics, createMetrics } from '../../../src/observability/metrics.ts'
import type { GroupAdmission } from '../../../src/proxy/group-admission.ts'
import type { Endpoint } from '../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

/** Upstream `u` with an admission queue of these answers, and `plain` without one. */
function withQueue(
  metrics: AyaMetrics,
  queue: {
    predictedWaitMs(priority: number): number
    stats(): unknown
    readonly classPriorities: readonly number[]
  },
) {
  const admission = queue as unknown as GroupAdmission
  metrics.setGroups(
    () => [
      { name: 'u', group: {} as UpstreamGroup, admission },
      { name: 'plain', group: {} as UpstreamGroup, admission: undefined },
    ],
    () => 0,
    () => queue.classPriorities,
  )
}

describe('metrics', () => {
  test('the predicted-wait gauge reads the wait at the default class, not at priority 0', async () => {
    const metrics = createMetrics()
    // Traffic of the default class (bronze, -2) waits 3 s; nothing waits at 0 or above.
    const admission = {
      predictedWaitMs: (priority: number) => (priority <= -2 ? 3_000 : 0),
      stats: () => ({ bands: [], rejectedTotal: {} }),
    } as unknown as GroupAdmission
    metrics.setGroups(
      () => [{ name: 'u', group: {} as UpstreamGroup, admission }],
      () => -2,
    )
    const text = await metrics.registry.getSingleMetricAsString(
      'aya_admission_predicted_wait_seconds',
    )
    assert.match(text, /^aya_admission_predicted_wait_seconds\{upstream="u"\} 3$/m)
  })

  test('the per-class predicted-wait gauge reads each configured class at its own band', async () => {
    const metrics = createMetrics()
    // Strict bands: a lower class waits for everything above it as well.
    withQueue(metrics, {
      predictedWaitMs: (priority: number) => (priority < 0 ? 4_000 : 1_000),
      stats: () => ({ bands: [], rejectedTotal: {} }),
      classPriorities: [0, -1],
    })
    const text = await metrics.registry.getSingleMetricAsString(
      'aya_admission_class_predicted_wait_seconds',
    )
    assert.match(
      text,
      /^aya_admission_class_predicted_wait_seconds\{upstream="u",priority="0"\} 1$/m,
    )
    assert.match(
      text,
      /^aya_admission_class_predicted_wait_seconds\{upstream="u",priority="-1"\} 4$/m,
    )
    assert.doesNotMatch(text, /upstream="plain"/)
  })

  test('the queue-depth gauge reads 0 for every configured class while its band is empty', async () => {
    const metrics = createMetrics()
    withQueue(metrics, {
      predictedWaitMs: () => 0,
      stats: () => ({ bands: [{ priority: -1, count: 2 }], rejectedTotal: {} }),
      classPriorities: [0, -1, 5],
    })
    const text = await metrics.registry.getSingleMetricAsString('aya_admission_queue_depth')
    assert.match(text, /^aya_admission_queue_depth\{upstream="u",priority="0"\} 0$/m)
    assert.match(text, /^aya_admission_queue_depth\{upstream="u",priority="5"\} 0$/m)
    assert.match(text, /^aya_admission_queue_depth\{upstream="u",priority="-1"\} 2$/m)
    // An upstream without an admission queue has no queue to report.
    assert.doesNotMatch(text, /upstream="plain"/)
  })

  test('a band between classes counts under the class at or below it, so clients mint no series', async () => {
    const metrics = createMetrics()
    withQueue(metrics, {
      predictedWaitMs: () => 0,
      stats: () => ({
        bands: [
          { priority: 3, count: 2, bytes: 200 },
          { priority: 0, count: 1, bytes: 50 },
          { priority: 877, count: 4, bytes: 400 },
        ],
        rejectedTotal: {},
      }),
      classPriorities: [1000, 0, -1000],
    })
    const depth = await metrics.registry.getSingleMetricAsString('aya_admission_queue_depth')
    assert.match(depth, /^aya_admission_queue_depth\{upstream="u",priority="0"\} 7$/m)
    assert.match(depth, /^aya_admission_queue_depth\{upstream="u",priority="1000"\} 0$/m)
    assert.match(depth, /^aya_admission_queue_depth\{upstream="u",priority="-1000"\} 0$/m)
    assert.doesNotMatch(depth, /priority="(3|877)"/)
    const bytes = await metrics.registry.getSingleMetricAsString('aya_admission_queue_bytes')
    assert.match(bytes, /^aya_admission_queue_bytes\{upstream="u",priority="0"\} 650$/m)
  })

  test('the eligible gauge is 1 for an eligible endpoint and 0 for one taken out', async () => {
    const metrics = createMetrics()
    const up = { id: 'up' } as Endpoint
    const out = { id: 'out' } as Endpoint
    const group = {
      name: 'u',
      endpoints: () => [up, out],
      eligible: () => [up],
    } as unknown as UpstreamGroup
    metrics.setGroups(
      () => [{ name: 'u', group, admission: undefined }],
      () => 0,
    )
    const text = await metrics.registry.getSingleMetricAsString('aya_endpoint_eligible')
    assert.match(text, /^aya_endpoint_eligible\{upstream="u",endpoint="up"\} 1$/m)
    assert.match(text, /^aya_endpoint_eligible\{upstream="u",endpoint="out"\} 0$/m)
  })

  test("the pacer gauges read each endpoint's held prompts and the prefill sent awaiting its first token", async () => {
    const clock = createManualClock()
    const pacer = createPrefillPacer(
      { leadMs: 40, agingMs: 500, overheadMs: 0, batchTokens: 0, backlogPrompts: 4 },
      { clock, prefillTokensPerSec: () => 10_000, decodeStepMs: () => 0 },
    )
    const metrics = createMetrics()
    const busy = { id: 'busy' } as Endpoint
    const idle = { id: 'idle' } as Endpoint
    const group = {
      name: 'u',
      endpoints: () => [busy, idle],
      eligible: () => [busy, idle],
      pacer: () => pacer,
    } as unknown as UpstreamGroup
    const unpaced = { ...group, name: 'plain', pacer: () => undefined } as UpstreamGroup
    metrics.setGroups(
      () => [
        { name: 'u', group, admission: undefined },
        { name: 'plain', group: unpaced, admission: undefined },
      ],
      () => 0,
    )
    const sent = pacer.enter('busy', 3000)
    sent.whenReleased(() => {})
    const held = pacer.enter('busy', 500)
    held.whenReleased(() => {})
    const read = (name: string) => metrics.registry.getSingleMetricAsString(name)

    let text = await read('aya_endpoint_pacer_held_prompts')
    assert.match(text, /^aya_endpoint_pacer_held_prompts\{upstream="u",endpoint="busy"\} 1$/m)
    assert.match(text, /^aya_endpoint_pacer_held_prompts\{upstream="u",endpoint="idle"\} 0$/m)
    // A group that does not pace has no series, rather than a 0 that says it does.
    assert.doesNotMatch(text, /upstream="plain"/)
    text = await read('aya_endpoint_pacer_sent_prefill_tokens')
    assert.match(
      text,
      /^aya_endpoint_pacer_sent_prefill_tokens\{upstream="u",endpoint="busy"\} 3000$/m,
    )

    sent.done(true)
    held.done(false)
    assert.match(await read('aya_endpoint_pacer_held_prompts'), /endpoint="busy"\} 0$/m)
    assert.match(await read('aya_endpoint_pacer_sent_prefill_tokens'), /endpoint="busy"\} 0$/m)
    pacer.close()
  })

  test('LLM series are labelled by the model registry entry, and a scope without the entry or the route drops them', async () => {
    const metrics = createMetrics()
    const llmRequest = (route: string, model: string, ttftMs?: number) =>
      ({
        id: 'r',
        listener: 'l',
        clientIp: '127.0.0.1',
        method: 'POST',
        url: '/v1/chat/completions',
        route: { name: route },
        upstream: undefined,
        endpoint: undefined,
        llm: { model: 'client-chosen-name' },
        modelEntry: model,
        ttftMs,
        promptTokens: 10,
        completionTokens: 2,
        attempts: 1,
        status: 200,
        errorCode: undefined,
        bytesIn: 0,
        bytesOut: 0,
        upstreamLatencyMs: undefined,
        durationMs: 300,
      }) as unknown as Parameters<AyaMetrics['observeRequest']>[0]
    metrics.observeRequest(llmRequest('chat', 'llama-*', 250))
    metrics.observeRequest(llmRequest('chat', 'llama-*'))
    metrics.observeRequest(llmRequest('chat', 'old'))
    metrics.observeRequest(llmRequest('gone', 'llama-*', 100))
    const text = async () => metrics.registry.metrics()
    const before = await text()
    assert.match(before, /^aya_llm_ttft_seconds_count\{route="chat",model="llama-\*"\} 1$/m)
    assert.match(
      before,
      /^aya_llm_ttft_seconds_bucket\{le="0.3",route="chat",model="llama-\*"\} 1$/m,
    )
    assert.match(
      before,
      /^aya_llm_tokens_total\{route="chat",model="llama-\*",kind="prompt"\} 20$/m,
    )
    assert.doesNotMatch(before, /client-chosen-name/)

    metrics.setRequestScope({ routes: new Set(['chat']), models: new Set(['llama-*']) })
    const after = await text()
    assert.match(
      after,
      /^aya_llm_tokens_total\{route="chat",model="llama-\*",kind="completion"\} 4$/m,
    )
    assert.doesNotMatch(after, /model="old"/)
    assert.doesNotMatch(after, /route="gone"/)
    // Finished after its model went: not counted.
    metrics.observeRequest(llmRequest('chat', 'old', 50))
    assert.doesNotMatch(await text(), /model="old"/)
  })
})
