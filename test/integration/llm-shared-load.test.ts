import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import type { EngineServer } from '../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import {
  adminMetrics,
  loggedDecisions,
  metricSample,
  type RunningAya,
  startLlmReplica,
} from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { type RunningRedis, startRedis, untilSubscribed } from '../helpers/redis-server.ts'
import { endpointIdOf as idOf, startSimEngines } from '../helpers/sim-engines.ts'

/** One chat of `words` fresh words (the engine counts a word as a token), read to its end. */
async function chat(aya: RunningAya, words: number, maxTokens: number, signal?: AbortSignal) {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: maxTokens,
      stream: true,
      messages: [{ role: 'user', content: `${randomUUID()} ${'abc '.repeat(words)}` }],
    }),
    ...(signal ? { signal } : {}),
  })
  await res.body.text()
  return res.statusCode
}

/**
 * Replica `a` knows one engine and keeps it busy with long generations; replica `b` knows that
 * engine and an idle one. Answers where b then places eight prompts, one after another, and its
 * decisions.
 */
async function placeBesideTheOtherReplica(t: TestContext, redis: RunningRedis | undefined) {
  // Two sequences at a time: the rest of a's generations wait at the engine, prefill to come.
  const twoSeqs: EngineProfile = { ...H100_LLAMA3_8B, name: 'h100-two-seqs', maxNumSeqs: 2 }
  const [busy, idle] = (await startSimEngines(t, [twoSeqs, twoSeqs], 10)) as [
    EngineServer,
    EngineServer,
  ]
  const state = redis
    ? { store: 'redis', url: redis.url, keyPrefix: `aya-${randomUUID()}:` }
    : { store: 'memory' }
  const a = await startLlmReplica(t, state, [busy])
  const b = await startLlmReplica(t, state, [busy, idle])
  if (redis) await untilSubscribed(redis, `${state.keyPrefix}load:fleet`, 2)
  const stop = new AbortController()
  t.after(() => stop.abort())
  const long = Array.from({ length: 8 }, () => chat(a, 2000, 50_000, stop.signal).catch(() => 0))
  await eventually(() => busy.engine.stats().waiting >= 6, 'a’s generations queued at the engine')
  const seen = loggedDecisions(b).length
  const statuses: number[] = []
  // Without sharing, a prompt b sends to the busy engine waits behind a's: it is given up after
  // a second. With it, none should wait, and a slow machine gets half a minute.
  const patienceMs = redis ? 30_000 : 1000
  for (let i = 0; i < 8; i++) {
    statuses.push(await chat(b, 2000, 2, AbortSignal.timeout(patienceMs)).catch(() => 0))
  }
  const decisions = loggedDecisions(b).slice(seen)
  const peerGauge = metricSample(
    await adminMetrics(b),
    'aya_endpoint_peer_inflight_requests',
    `upstream="fleet",endpoint="${idOf(busy)}"`,
  )
  stop.abort()
  await Promise.all(long)
  return { busy, idle, decisions, statuses, peerGauge, b }
}

describe('Aya replicas sharing their in-flight work through Redis', () => {
  test('place requests away from an engine another replica keeps busy, which they cannot see otherwise', async (t) => {
    const redis = await startRedis()
    t.after(() => redis.close())
    const { busy, idle, decisions, statuses, peerGauge, b } = await placeBesideTheOtherReplica(
      t,
      redis,
    )
    assert.deepEqual(statuses, Array(8).fill(200))
    assert.deepEqual(
      decisions.map((d) => d.chosen),
      Array(8).fill(idOf(idle)),
      'every prompt to the engine the other replica leaves idle',
    )
    for (const decision of decisions) {
      const [onBusy, onIdle] = [busy, idle].map(
        (engine) => decision.candidates.find((c) => c.endpoint === idOf(engine))!,
      )
      // Six 2,000-token prompts wait there: 12k tokens of prefill ahead.
      assert.ok(
        onBusy!.predictedTtftMs > onIdle!.predictedTtftMs + 200,
        `busy ${onBusy!.predictedTtftMs} ms against idle ${onIdle!.predictedTtftMs} ms`,
      )
    }
    assert.equal(peerGauge, 8, 'b’s metrics show the other replica’s eight requests')
    // Once a’s generations end, b counts nothing of a’s.
    await eventually(async () => {
      const text = await adminMetrics(b)
      const peer = `upstream="fleet",endpoint="${idOf(busy)}"`
      return metricSample(text, 'aya_endpoint_peer_inflight_requests', peer) === 0
    }, 'the other replica’s work gone from b’s view')
  })

  test('without shared state, a replica sees only its own work and splits between the engines', async (t) => {
    const { idle, decisions } = await placeBesideTheOtherReplica(t, undefined)
    const onIdle = decisions.filter((d) => d.chosen === idOf(idle)).length
    assert.ok(onIdle < 8, `placed ${onIdle} of 8 on the engine b alone thinks is as idle`)
  })

  test('hold a prompt at one replica while another replica’s prompt prefills at the engine', async (t) => {
    const redis = await startRedis()
    t.after(() => redis.close())
    // Real time: a 30,000-token prompt takes the engine about a second to prefill.
    const [engine] = (await startSimEngines(t, [H100_LLAMA3_8B], 1)) as [EngineServer]
    const state = { store: 'redis', url: redis.url, keyPrefix: `aya-${randomUUID()}:` }
    const a = await startLlmReplica(t, state, [engine])
    // A long aging bound, so that only a's first token lets b's prompt go, however slow the machine.
    const b = await startLlmReplica(t, state, [engine], { pacingAgingMs: 60_000 })
    await untilSubscribed(redis, `${state.keyPrefix}load:fleet`, 2)
    const atEngine = () => engine.engine.stats().running + engine.engine.stats().waiting
    const long = chat(a, 30_000, 2)
    await eventually(() => atEngine() === 1, 'a’s prompt at the engine')
    await eventually(async () => {
      const text = await adminMetrics(b)
      const peer = `upstream="fleet",endpoint="${idOf(engine)}"`
      return (metricSample(text, 'aya_endpoint_peer_pending_prefill_tokens', peer) ?? 0) > 0
    }, 'b heard of a’s prompt')
    const short = chat(b, 500, 2)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(atEngine(), 1, 'b holds its prompt while a’s prefills')
    assert.deepEqual(await Promise.all([long, short]), [200, 200])
  })
})
