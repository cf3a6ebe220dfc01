import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import type { EngineServer } from '../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createSeededRandom } from '../../src/util/random.ts'
import {
  adminMetrics,
  loggedDecisions as decisionsOf,
  metricSample,
  type RunningAya,
  startSimGateway,
} from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { type MetricsGate, startMetricsGate } from '../helpers/metrics-gate.ts'
import { endpointIdOf as idOf, startSimEngines as startEngines } from '../helpers/sim-engines.ts'

const SERVED = H100_LLAMA3_8B.modelName

/** Two sequences at a time, so direct long generations leave a queue waiting at the engine. */
const TWO_SEQS: EngineProfile = { ...H100_LLAMA3_8B, name: 'h100-two-seqs', maxNumSeqs: 2 }

/**
 * An H100 whose every step reads 40 ms of memory: a 1,000-token prefill still takes one step
 * (41 ms), but a stream makes a token every 41 ms, so streams stay in flight while a test places
 * the requests beside them.
 */
const SLOW_DECODE: EngineProfile = {
  ...H100_LLAMA3_8B,
  name: 'h100-slow-decode',
  stepTime: { ...H100_LLAMA3_8B.stepTime, memoryBaseMs: 40 },
}

/**
 * Aya's LLM route `/v1` to these endpoints as the upstream `fleet` (`upstream` sets its policy
 * and the rest), decisions logged at debug level, near-tie draws seeded.
 */
const startGateway = (
  t: TestContext,
  endpoints: ReadonlyArray<{ readonly url: string }>,
  upstream: Record<string, unknown>,
  route: Record<string, unknown> = {},
): Promise<RunningAya> =>
  startSimGateway(
    t,
    { endpoints: endpoints.map(({ url }) => ({ url })), ...upstream },
    { log: { level: 'debug' }, route, deps: { random: createSeededRandom(7) } },
  )

/** Numbers the prompts that must not share a prefix with any other. */
let promptCount = 0

/**
 * `words` words, led by a numbered first word so that no other prompt shares a block of it: cold
 * everywhere. The simulated engine counts a word as a token, and so does Aya at 4 characters each.
 */
const coldPrompt = (words: number): string => `prompt-${++promptCount} ${'abc '.repeat(words)}`

interface ChatOptions {
  readonly content: string
  readonly maxTokens: number
  /** The model named: Aya's registry name by default, the served name when sent to an engine. */
  readonly model?: string
  readonly headers?: Record<string, string>
  readonly signal?: AbortSignal
}

const chatBody = (options: ChatOptions, stream: boolean): string =>
  JSON.stringify({
    model: options.model ?? 'llama',
    max_tokens: options.maxTokens,
    messages: [{ role: 'user', content: options.content }],
    ...(stream ? { stream: true } : {}),
  })

/**
 * One chat completion, not streamed, read to its end; answers the status. Given up after 30 s
 * unless `signal` says otherwise: one placed behind a queue of long generations would wait minutes.
 */
async function chat(baseUrl: string, options: ChatOptions): Promise<number> {
  const res = await request(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: chatBody(options, false),
    signal: options.signal ?? AbortSignal.timeout(30_000),
  })
  await res.body.text()
  return res.statusCode
}

/** Sends `count` cold chats of `words` words one after another through Aya, each answered 200. */
async function coldChatsInTurn(aya: RunningAya, count: number, words: number) {
  for (let i = 0; i < count; i++) {
    assert.equal(await chat(aya.url, { content: coldPrompt(words), maxTokens: 2 }), 200)
  }
}

/**
 * Long generations straight to an engine, around Aya (`maxTokens` each, which the engine's KV must
 * be able to hold); `stop` ends them and waits for them.
 */
function bypass(
  t: TestContext,
  engine: EngineServer,
  count: number,
  words: number,
  maxTokens = 50_000,
) {
  const controller = new AbortController()
  t.after(() => controller.abort())
  const direct = Array.from({ length: count }, () =>
    chat(engine.url, {
      content: coldPrompt(words),
      maxTokens,
      model: SERVED,
      signal: controller.signal,
    }).catch(() => undefined),
  )
  return {
    async stop() {
      controller.abort()
      await Promise.all(direct)
    },
  }
}

/**
 * Eight long generations of 2,000-word prompts straight to `loaded` (two sequences run, six
 * wait), once a scrape of every gate asked after the queue formed has been read.
 */
async function queueAround(t: TestContext, loaded: EngineServer, gates: readonly MetricsGate[]) {
  const direct = bypass(t, loaded, 8, 2000)
  await eventually(() => loaded.engine.stats().waiting >= 6, 'the direct load queued')
  await Promise.all(gates.map((gate) => gate.moreServed(2)))
  return direct
}

/** A streamed chat whose first token has arrived; `abort` leaves it, as a client that goes away. */
interface OpenStream {
  abort(): void
}

/** Streams a chat through Aya and resolves once its first token has come back. */
async function openStream(
  t: TestContext,
  aya: RunningAya,
  options: ChatOptions,
): Promise<OpenStream> {
  const controller = new AbortController()
  t.after(() => controller.abort())
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: chatBody(options, true),
    signal: controller.signal,
  })
  assert.equal(res.statusCode, 200)
  const chunks = res.body[Symbol.asyncIterator]()
  const first = await chunks.next()
  assert.match(String(first.value), /^data: /, 'the first token')
  // Read on, so the stream is not held back by its own unread body.
  void (async () => {
    try {
      while (!(await chunks.next()).done) {}
    } catch {}
  })()
  return { abort: () => controller.abort() }
}

/** How many of these decisions placed their request on each endpoint, in the endpoints' order. */
const placedOn = (
  decisions: readonly AyaDecision[],
  endpoints: ReadonlyArray<{ readonly url: string }>,
) => endpoints.map((endpoint) => decisions.filter((d) => d.chosen === idOf(endpoint)).length)

/** The candidate for an endpoint in a decision. */
const candidateOf = (decision: AyaDecision, endpoint: { readonly url: string }) => {
  const candidate = decision.candidates.find((c) => c.endpoint === idOf(endpoint))
  assert.ok(candidate, `${idOf(endpoint)} is a candidate of ${JSON.stringify(decision)}`)
  return candidate
}

/** From now on: the function returned answers the decisions logged since this call. */
function decisionsFrom(aya: RunningAya) {
  const seen = decisionsOf(aya).length
  return () => decisionsOf(aya).slice(seen)
}

/** Requests Aya counts in flight on an endpoint (`aya_endpoint_inflight_requests`). */
async function inflightOn(aya: RunningAya, endpoint: { readonly url: string }) {
  const labels = `upstream="fleet",endpoint="${idOf(endpoint)}"`
  return metricSample(await adminMetrics(aya), 'aya_endpoint_inflight_requests', labels) ?? 0
}

/** The engine is idle: what clients sent straight to it has gone. */
const drained = (engine: EngineServer) => {
  const stats = engine.engine.stats()
  return stats.waiting === 0 && stats.running === 0
}

describe('the aya scheduler over engines that publish SGLang’s metric names', () => {
  test('steers new requests away from an SGLang engine that clients bypassing Aya keep queued, and back once it drains', async (t) => {
    const engines = await startEngines(t, [TWO_SEQS, TWO_SEQS], 10, 'sglang')
    const [loaded, other] = engines as [EngineServer, EngineServer]
    const gates = await Promise.all(engines.map((engine) => startMetricsGate(t, engine.url)))
    const [loadedGate, otherGate] = gates as [MetricsGate, MetricsGate]
    // Scraped every 50 ms; a reading counts for 10 s, so a slow machine's late scrape does not
    // leave the queue unknown (the test below covers readings that go stale).
    const aya = await startGateway(t, gates, {
      policy: 'aya',
      engineMetrics: { scrapeIntervalMs: 50, staleAfterMs: 10_000 },
    })
    // Aya reads the engines' pages, not vLLM's names: none is there.
    const page = await (await request(`${loaded.url}/metrics`)).body.text()
    assert.match(page, /^sglang:num_queue_reqs\{model_name=".+"\} 0$/m)
    assert.doesNotMatch(page, /^vllm:/m)

    // Control: with nothing else on the fleet, sequential prompts use both engines.
    const control = decisionsFrom(aya)
    await coldChatsInTurn(aya, 8, 2000)
    const before = placedOn(control(), gates)
    assert.ok(Math.min(...before) >= 2, `both engines serve an idle fleet: ${before}`)

    // Eight long generations straight to one engine: two run, six wait there.
    const direct = await queueAround(t, loaded, gates)

    const during = decisionsFrom(aya)
    await coldChatsInTurn(aya, 8, 2000)
    assert.deepEqual(placedOn(during(), gates), [0, 8], 'all to the engine without the queue')
    for (const decision of during()) {
      const [queued, free] = [candidateOf(decision, loadedGate), candidateOf(decision, otherGate)]
      // Six waiting prompts of this size are about 12k tokens of prefill ahead.
      assert.ok(
        queued.predictedTtftMs > free.predictedTtftMs + 500,
        `queued ${queued.predictedTtftMs} ms against ${free.predictedTtftMs} ms`,
      )
    }
    assert.ok(loaded.engine.stats().waiting >= 6, 'the direct load still queued at the end')
    const gaps = during().map(
      (d) => candidateOf(d, loadedGate).predictedTtftMs - candidateOf(d, otherGate).predictedTtftMs,
    )
    t.diagnostic(`idle ${before}; queued: TTFT predicted ${Math.min(...gaps)} ms or more above`)

    // The clients go away: the engine drains, and once scraped idle it takes work again.
    await direct.stop()
    await eventually(() => drained(loaded), 'the direct load gone')
    await loadedGate.moreServed(2)
    const after = decisionsFrom(aya)
    await coldChatsInTurn(aya, 8, 2000)
    const back = placedOn(after(), gates)
    assert.ok(back[0]! >= 2, `the drained engine serves again: ${back}`)
    assert.equal(other.engine.stats().waiting, 0)
    t.diagnostic(`drained: ${back}`)
  })
})

describe('engine metrics that stop answering count as unknown, over real sockets', () => {
  test('aya counts a queued engine’s last reading until it is staleAfterMs old, then goes by router-side accounting alone', async (t) => {
    const staleAfterMs = 2000
    const engines = await startEngines(t, [TWO_SEQS, TWO_SEQS], 10)
    const [loaded] = engines as [EngineServer, EngineServer]
    const gates = await Promise.all(engines.map((engine) => startMetricsGate(t, engine.url)))
    const [loadedGate, otherGate] = gates as [MetricsGate, MetricsGate]
    const aya = await startGateway(t, gates, {
      policy: 'aya',
      engineMetrics: { scrapeIntervalMs: 50, staleAfterMs },
    })

    const direct = await queueAround(t, loaded, gates)
    const fresh = decisionsFrom(aya)
    await coldChatsInTurn(aya, 4, 2000)
    assert.deepEqual(placedOn(fresh(), gates), [0, 4], 'a fresh reading of the queue steers')

    // The engine's /metrics now answers 503, while it keeps serving and its queue stays.
    loadedGate.shut()
    await loadedGate.moreRefused(1)
    const readAtMs = loadedGate.lastServedAtMs
    const recent = decisionsFrom(aya)
    let sent = 0
    while (sent < 3 && performance.now() < readAtMs + staleAfterMs / 2) {
      await coldChatsInTurn(aya, 1, 2000)
      sent++
    }
    assert.ok(sent >= 1, 'a chat sent while the last reading was recent')
    assert.deepEqual(placedOn(recent(), gates), [0, sent], 'a failed scrape keeps the last reading')

    // The queue goes away unseen. Once the last reading is staleAfterMs old it is unknown: the
    // queue it showed no longer counts, and the engine is judged by what Aya itself sent there.
    await direct.stop()
    await eventually(() => drained(loaded), 'the direct load gone')
    await eventually(
      () => performance.now() > loadedGate.lastServedAtMs + staleAfterMs + 100,
      'the last reading stale',
    )
    assert.equal(loadedGate.lastServedAtMs, readAtMs, 'no scrape answered since')
    // The operator sees why: the failed scrapes counted, the reading's age past staleAfterMs.
    const text = await adminMetrics(aya)
    const labelsOf = (gate: MetricsGate) => `upstream="fleet",endpoint="${idOf(gate)}"`
    const failures = (gate: MetricsGate) =>
      metricSample(text, 'aya_endpoint_engine_metrics_failures_total', labelsOf(gate))
    const ageS = (gate: MetricsGate) =>
      metricSample(text, 'aya_endpoint_engine_metrics_age_seconds', labelsOf(gate))
    assert.ok(failures(loadedGate)! > 10, `failed scrapes: ${failures(loadedGate)}`)
    assert.equal(failures(otherGate) ?? 0, 0, 'none where the scrapes answer')
    assert.ok(ageS(loadedGate)! > staleAfterMs / 1000, `reading age ${ageS(loadedGate)} s`)
    assert.ok(ageS(otherGate)! < staleAfterMs / 1000, `reading age ${ageS(otherGate)} s`)
    const stale = decisionsFrom(aya)
    await coldChatsInTurn(aya, 8, 2000)
    const placed = placedOn(stale(), gates)
    assert.ok(placed[0]! >= 2, `the engine whose metrics are stale serves again: ${placed}`)
    for (const decision of stale()) {
      const [unknown, known] = [candidateOf(decision, loadedGate), candidateOf(decision, otherGate)]
      assert.ok(
        unknown.predictedTtftMs < known.predictedTtftMs + 100,
        `no queue assumed where the reading is stale: ${unknown.predictedTtftMs} ms against ${known.predictedTtftMs} ms`,
      )
    }
    t.diagnostic(`recent reading: ${sent} chats to the other; stale: ${placed}`)
  })

  test('llm-d-prefix-load scores an engine whose metrics went stale below a queued one, never as the idle engine its last scrape showed', async (t) => {
    const staleAfterMs = 1000
    const engines = await startEngines(t, [TWO_SEQS, TWO_SEQS], 1)
    const [, busy] = engines as [EngineServer, EngineServer]
    const gates = await Promise.all(engines.map((engine) => startMetricsGate(t, engine.url)))
    const [idleGate, busyGate] = gates as [MetricsGate, MetricsGate]
    const aya = await startGateway(t, gates, {
      policy: 'llm-d-prefix-load',
      engineMetrics: { scrapeIntervalMs: 50, staleAfterMs },
    })
    /**
     * Where Aya sends each of six cold chats, one after another, seen at the gates: a chat placed
     * behind the queue would not be answered for minutes, so each is left once it has passed one.
     */
    const placeSix = async () => {
      const chosen: string[] = []
      for (let i = 0; i < 6; i++) {
        const before = gates.map((gate) => gate.passed)
        const leave = new AbortController()
        const sent = chat(aya.url, {
          content: coldPrompt(500),
          maxTokens: 2,
          signal: leave.signal,
        }).catch(() => undefined)
        await eventually(
          () => gates.some((gate, g) => gate.passed > before[g]!),
          'the chat reached an engine',
        )
        chosen.push(...gates.filter((gate, g) => gate.passed > before[g]!).map(idOf))
        leave.abort()
        await sent
      }
      return chosen
    }

    // Four long generations straight to one engine: two run, two wait there.
    const direct = bypass(t, busy, 4, 1000)
    await eventually(() => busy.engine.stats().waiting >= 2, 'the direct load queued')
    await Promise.all([idleGate.moreServed(2), busyGate.moreServed(2)])
    assert.deepEqual(await placeSix(), Array(6).fill(idOf(idleGate)), 'fresh: the idle one')

    // The idle engine's /metrics stops answering: past staleAfterMs, its idle reading is gone.
    idleGate.shut()
    await idleGate.moreRefused(1)
    await eventually(
      () => performance.now() > idleGate.lastServedAtMs + staleAfterMs + 50,
      'the idle reading stale',
    )
    const waiting = busy.engine.stats().waiting
    assert.deepEqual(
      await placeSix(),
      Array(6).fill(idOf(busyGate)),
      `stale: the engine known to have ${waiting} waiting`,
    )
    t.diagnostic(
      `fresh: all six to the idle engine; stale: all six to the one with ${waiting} waiting`,
    )
    await direct.stop()
  })
})

describe('the aya scheduler keeps a session together until its endpoint saturates', () => {
  // 375 usable blocks of 16 tokens: 6,000 KV tokens, as Aya is told (engine metrics off, so no
  // scrape races the first turn), of which it plans at most 90 %: 5,400. Each turn below holds
  // its 1,000-token prompt plus the output Aya predicts for it (under 400 tokens at max_tokens
  // 1,000) while its stream runs, so three or four turns fit and the next does not.
  const kvTokens = 6000
  const smallKv: EngineProfile = { ...SLOW_DECODE, name: 'h100-slow-small-kv', numGpuBlocks: 376 }
  const turnWords = 1000
  const turnTokens = 1000

  test('keeps a session’s streams on one endpoint while it has KV room, moves it once it has none, and keeps it where it moved', async (t) => {
    const engines = await startEngines(t, [smallKv, smallKv], 1)
    const aya = await startGateway(t, engines, {
      policy: 'aya',
      engineMetrics: false,
      // A learned-rate difference between two identical engines must not decide here: within
      // half a second of the best, endpoints are near ties, which the session wins.
      policyOptions: { defaultKvCapacityTokens: kvTokens, interferenceSlackMs: 500 },
    })
    const session = { 'x-session-id': 'conversation-1' }
    /** One turn of the session: a new stream, whose prompt no earlier one shares a block with. */
    const turn = async () => {
      const placed = decisionsFrom(aya)
      const stream = await openStream(t, aya, {
        content: coldPrompt(turnWords),
        maxTokens: turnTokens,
        headers: session,
      })
      const [decision] = placed()
      assert.ok(decision)
      return { stream, decision }
    }

    const first = await turn()
    const home = engines.find((engine) => idOf(engine) === first.decision.chosen)!
    const away = engines.find((engine) => engine !== home)!
    const atHome = [first.stream]
    let moved: AyaDecision | undefined
    const stayed: AyaDecision[] = []
    for (let i = 0; i < 8 && moved === undefined; i++) {
      const { stream, decision } = await turn()
      if (candidateOf(decision, home).kvOk) {
        // Decode interference and cache growth both favour the idle endpoint: only the session
        // keeps the turn beside its streams.
        assert.equal(decision.chosen, idOf(home), `with room, the session stays: ${i + 2}`)
        assert.equal(decision.branch, 'cold')
        stayed.push(decision)
        atHome.push(stream)
      } else {
        moved = decision
      }
    }
    assert.ok(stayed.length >= 2, `turns kept beside the session’s streams: ${stayed.length}`)
    assert.ok(moved, 'a turn that found no KV room where the session was')
    assert.equal(moved.chosen, idOf(away), 'the session moves once its endpoint is saturated')
    assert.equal(moved.branch, 'cold')
    assert.ok(candidateOf(moved, away).kvOk)
    t.diagnostic(`${1 + stayed.length} turns at home, then moved (${atHome.length} streams)`)

    // The streams at home end: that endpoint is empty, the new one has a stream. The session
    // stays where its last turn went.
    for (const stream of atHome) stream.abort()
    await eventually(async () => (await inflightOn(aya, home)) === 0, 'the home streams gone')
    const next = await turn()
    assert.equal(next.decision.chosen, idOf(away), 'the session stays where it moved')
    assert.ok(candidateOf(next.decision, home).kvOk)
  })
})

describe('the route’s sessionHeader names the session header the aya scheduler reads', () => {
  const turn = { maxTokens: 1000 }
  /**
   * Two streams, one after another, through a fresh Aya over these engines whose route reads
   * sessions from `x-conversation`, each carrying `headers`; answers where each went.
   */
  async function twoTurns(
    t: TestContext,
    engines: readonly EngineServer[],
    headers: Record<string, string>,
  ) {
    const aya = await startGateway(
      t,
      engines,
      { policy: 'aya', engineMetrics: false, policyOptions: { interferenceSlackMs: 500 } },
      { sessionHeader: 'x-conversation' },
    )
    const placed = decisionsFrom(aya)
    const streams: OpenStream[] = []
    for (let i = 0; i < 2; i++) {
      streams.push(await openStream(t, aya, { ...turn, content: coldPrompt(1000), headers }))
    }
    const decisions = placed()
    for (const stream of streams) stream.abort()
    await Promise.all(
      engines.map((engine) =>
        eventually(async () => (await inflightOn(aya, engine)) === 0, 'done'),
      ),
    )
    assert.equal(decisions.length, 2)
    return decisions.map((d) => d.chosen)
  }

  test('keeps turns that carry the configured header together, and ignores x-session-id', async (t) => {
    const engines = await startEngines(t, [SLOW_DECODE, SLOW_DECODE], 1)
    // The second turn finds the first one's stream where it went: decode interference and cache
    // growth send it to the other endpoint, unless its session keeps it there.
    const named = await twoTurns(t, engines, { 'x-conversation': 'conversation-1' })
    assert.equal(named[1], named[0], `the configured header keeps the turns together: ${named}`)
    const unnamed = await twoTurns(t, engines, { 'x-session-id': 'conversation-2' })
    assert.notEqual(unnamed[1], unnamed[0], `x-session-id is no session here: ${unnamed}`)
    t.diagnostic(`x-conversation: ${named}; x-session-id: ${unnamed}`)
  })
})

describe('the aya scheduler spreads cold prompts by cache growth', () => {
  test('sends cold prompts to the endpoint whose cache has grown least lately, though it has a stream in flight', async (t) => {
    const engines = await startEngines(t, [SLOW_DECODE, SLOW_DECODE], 2)
    const aya = await startGateway(t, engines, {
      policy: 'aya',
      engineMetrics: false,
      // Both endpoints stay near ties whatever their learned rates: cache growth and decode
      // interference decide.
      policyOptions: { interferenceSlackMs: 500 },
    })
    // A stream on one endpoint: each later prompt placed there stalls it.
    const streaming = decisionsFrom(aya)
    await openStream(t, aya, { content: coldPrompt(2000), maxTokens: 1000 })
    const quiet = engines.find((engine) => idOf(engine) === streaming()[0]?.chosen)!
    const churning = engines.find((engine) => engine !== quiet)!

    // A document and six long follow-ups to it go to the other endpoint, its cache taking in
    // 26,000 new tokens against the 2,000 of the stream's prompt.
    const document = `document-${++promptCount} ${'abc '.repeat(2000)}`
    const grown = decisionsFrom(aya)
    assert.equal(await chat(aya.url, { content: document, maxTokens: 2 }), 200)
    for (let i = 0; i < 6; i++) {
      const followUp = `${document} follow-up-${i} ${'xyz '.repeat(4000)}`
      assert.equal(await chat(aya.url, { content: followUp, maxTokens: 2 }), 200)
    }
    assert.deepEqual(
      grown().map((d) => [d.branch, d.chosen]),
      [['cold', idOf(churning)], ...Array(6).fill(['warm', idOf(churning)])],
    )

    // Cold prompts: no endpoint holds any of them and nothing is queued anywhere. Decode
    // interference alone would send them away from the stream; they go where the cache has taken
    // in least lately, whose LRU tail is the oldest to evict.
    const cold = decisionsFrom(aya)
    await coldChatsInTurn(aya, 3, 2000)
    assert.equal(cold().length, 3)
    const [first] = cold()
    t.diagnostic(`cold, both at cost ${first && candidateOf(first, quiet).costMs} ms`)
    for (const decision of cold()) {
      const [low, high] = [candidateOf(decision, quiet), candidateOf(decision, churning)]
      assert.equal(decision.branch, 'cold')
      assert.equal(decision.chosen, idOf(quiet), JSON.stringify(decision.candidates))
      assert.equal(low.hitTokens, 0)
      assert.equal(high.hitTokens, 0)
      // Otherwise tied: neither has a rate learned apart from the other's, nor a queue.
      assert.ok(Math.abs(low.costMs - high.costMs) <= 1, `costs ${low.costMs}, ${high.costMs}`)
    }
  })
})
