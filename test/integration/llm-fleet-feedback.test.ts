import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { warmUpSim } from '../../src/sim/warm-up.ts'
import { type RunningAya, startSimGateway } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'

type TestContext = import('node:test').TestContext

const SERVED = H100_LLAMA3_8B.modelName

/** Simulated vLLM engines sharing one clock `speedup` times faster than real time. */
async function startEngines(
  t: TestContext,
  profiles: readonly EngineProfile[],
  speedup: number,
): Promise<EngineServer[]> {
  const clock = createScaledClock({ speedup })
  const engines: EngineServer[] = []
  for (const [i, profile] of profiles.entries()) {
    warmUpSim(profile)
    const engine = await startEngineServer({ profile, seed: i + 1 }, { clock })
    t.after(() => engine.close())
    engines.push(engine)
  }
  return engines
}

/** The id Aya gives an engine's endpoint: its host:port. */
const idOf = (engine: EngineServer) => new URL(engine.url).host

/**
 * Aya's `aya` policy over these engines, scraping their `/metrics` every 50 ms unless `upstream`
 * says otherwise, with its decisions logged (debug level).
 */
const startGateway = (
  t: TestContext,
  engines: readonly EngineServer[],
  upstream: Record<string, unknown> = {},
) =>
  startSimGateway(
    t,
    {
      policy: 'aya',
      endpoints: engines.map((engine) => ({ url: engine.url })),
      engineMetrics: { scrapeIntervalMs: 50 },
      ...upstream,
    },
    { log: { level: 'debug' } },
  )

interface ChatOptions {
  /** Prompt words: the simulated engine counts a word as a token, and so does Aya at 4 characters each. */
  readonly words: number
  readonly maxTokens: number
  readonly stream?: boolean
  /** The model named: Aya's registry name by default, the served name when sent to an engine. */
  readonly model?: string
  readonly signal?: AbortSignal
}

/**
 * One chat completion, read to its end; answers the status. A random first word keeps prompts from
 * sharing a prefix, so every one is cold.
 */
async function chat(baseUrl: string, options: ChatOptions): Promise<number> {
  const res = await request(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: options.model ?? 'llama',
      max_tokens: options.maxTokens,
      messages: [{ role: 'user', content: `${Math.random()} ${'abc '.repeat(options.words)}` }],
      ...(options.stream ? { stream: true } : {}),
    }),
    ...(options.signal ? { signal: options.signal } : {}),
  })
  await res.body.text()
  return res.statusCode
}

/** Sends `count` chats one after another through Aya, each answered 200. */
async function chatInTurn(aya: RunningAya, count: number, options: ChatOptions) {
  for (let i = 0; i < count; i++) assert.equal(await chat(aya.url, options), 200)
}

const decisionsOf = (aya: RunningAya): AyaDecision[] =>
  aya.logs.filter((l) => l.msg === 'scheduler decision').map((l) => l.decision as AyaDecision)

/** How many of these decisions placed their request on each engine, in the engines' order. */
const placedOn = (decisions: readonly AyaDecision[], engines: readonly EngineServer[]) =>
  engines.map((engine) => decisions.filter((d) => d.chosen === idOf(engine)).length)

/** The candidate for `engine` in a decision. */
const candidateOf = (decision: AyaDecision, engine: EngineServer) => {
  const candidate = decision.candidates.find((c) => c.endpoint === idOf(engine))
  assert.ok(candidate, `${idOf(engine)} is a candidate of ${JSON.stringify(decision)}`)
  return candidate
}

/** The prefill rate Aya exports for each engine, learned from its responses. */
async function learnedPrefillRates(aya: RunningAya, engines: readonly EngineServer[]) {
  const text = await (await request(`${aya.adminUrl}/metrics`)).body.text()
  return engines.map((engine) => {
    const line = new RegExp(
      `^aya_endpoint_prefill_tokens_per_second\\{upstream="fleet",endpoint="${idOf(engine)}"\\} (\\S+)$`,
      'm',
    ).exec(text)
    assert.ok(line, `a learned prefill rate for ${idOf(engine)}`)
    return Number(line[1])
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Scrapes every 50 ms: this many real milliseconds cover several. */
const SCRAPES_MS = 300

describe('the aya scheduler closes the loop on engine metrics over real sockets', () => {
  test('steers new requests away from an engine that clients bypassing Aya keep queued, and back once it drains', async (t) => {
    // Two sequences at a time, so direct long generations leave a queue waiting at the engine.
    const twoSeqs: EngineProfile = { ...H100_LLAMA3_8B, name: 'h100-two-seqs', maxNumSeqs: 2 }
    const engines = await startEngines(t, [twoSeqs, twoSeqs], 10)
    const [loaded, other] = engines as [EngineServer, EngineServer]
    const aya = await startGateway(t, engines)
    const turn = { words: 2000, maxTokens: 2 }

    // Control: with nothing else on the fleet, sequential prompts use both engines.
    await chatInTurn(aya, 8, turn)
    const before = placedOn(decisionsOf(aya), engines)
    assert.ok(Math.min(...before) >= 2, `both engines serve an idle fleet: ${before}`)

    // Eight long generations straight to one engine: two run, six wait there.
    const bypass = new AbortController()
    const direct = Array.from({ length: 8 }, () =>
      chat(loaded.url, {
        words: 2000,
        maxTokens: 50_000,
        model: SERVED,
        signal: bypass.signal,
      }).catch(() => 0),
    )
    t.after(() => bypass.abort())
    await eventually(() => loaded.engine.stats().waiting >= 6, 'the direct load queued')
    await sleep(SCRAPES_MS)

    const seen = decisionsOf(aya).length
    await chatInTurn(aya, 8, turn)
    const during = decisionsOf(aya).slice(seen)
    assert.deepEqual(placedOn(during, engines), [0, 8], 'all to the engine without the queue')
    for (const decision of during) {
      const [queued, free] = [candidateOf(decision, loaded), candidateOf(decision, other)]
      // Six waiting prompts of this size are about 12k tokens of prefill ahead.
      assert.ok(
        queued.predictedTtftMs > free.predictedTtftMs + 500,
        `queued ${queued.predictedTtftMs} ms against ${free.predictedTtftMs} ms`,
      )
    }
    assert.ok(loaded.engine.stats().waiting >= 6, 'the direct load was queued throughout')

    // The clients go away: the engine drains, and once scraped idle it takes work again.
    bypass.abort()
    await Promise.all(direct)
    await eventually(() => loaded.engine.stats().waiting === 0, 'the direct load gone')
    await sleep(SCRAPES_MS)
    const drained = decisionsOf(aya).length
    await chatInTurn(aya, 8, turn)
    const after = placedOn(decisionsOf(aya).slice(drained), engines)
    assert.ok(after[0]! >= 2, `the drained engine serves again: ${after}`)
  })
})

describe('the aya scheduler learns an engine’s KV capacity from vllm:cache_config_info', () => {
  // 800 blocks of 16 tokens: 12,800 tokens, room for one 6,000-token prompt below the 0.9
  // high-water mark but not two. Aya's default for an engine that publishes nothing is 262,144.
  const smallKv: EngineProfile = { ...H100_LLAMA3_8B, name: 'h100-small-kv', numGpuBlocks: 800 }
  const burst = { words: 6000, maxTokens: 200, stream: true }

  /** Eight cold 6,000-token prompts at once to a small-KV and a normal engine; their decisions. */
  async function placeBurst(t: TestContext, engineMetrics: Record<string, unknown> | false) {
    const engines = await startEngines(t, [smallKv, H100_LLAMA3_8B], 5)
    const aya = await startGateway(t, engines, { engineMetrics })
    // Aya scrapes each endpoint as it starts, and every 50 ms after.
    await sleep(SCRAPES_MS)
    const statuses = await Promise.all(Array.from({ length: 8 }, () => chat(aya.url, burst)))
    assert.deepEqual(statuses, Array(8).fill(200))
    const decisions = decisionsOf(aya)
    assert.equal(decisions.length, 8)
    return { engines, decisions }
  }

  test('keeps a burst of long prompts off the small engine once one is in flight there', async (t) => {
    const { engines, decisions } = await placeBurst(t, { scrapeIntervalMs: 50 })
    const [small, big] = engines as [EngineServer, EngineServer]
    const placed = placedOn(decisions, engines)
    assert.ok(placed[0]! <= 1, `at most one prompt at a time fits the small engine: ${placed}`)
    const smallFull = decisions.filter((d) => !candidateOf(d, small).kvOk)
    assert.ok(smallFull.length >= 6, `no KV headroom on the small engine: ${smallFull.length}`)
    for (const decision of decisions) assert.ok(candidateOf(decision, big).kvOk)
    for (const decision of smallFull) assert.equal(decision.chosen, idOf(big))
  })

  test('with engine metrics off, assumes the default capacity and gives the small engine its share of the burst', async (t) => {
    const { engines, decisions } = await placeBurst(t, false)
    const placed = placedOn(decisions, engines)
    assert.ok(placed[0]! >= 2, `the small engine gets its share: ${placed}`)
    for (const decision of decisions) {
      assert.ok(
        decision.candidates.every((c) => c.kvOk),
        JSON.stringify(decision.candidates),
      )
    }
  })
})

describe('the aya scheduler over a mixed fleet it has never seen', () => {
  // Prefill compute and memory reads 2.5× an H100's, under a name Aya has no profile for.
  const { stepTime } = H100_LLAMA3_8B
  const slow: EngineProfile = {
    ...H100_LLAMA3_8B,
    name: 'unseen-gpu-2.5x',
    stepTime: {
      ...stepTime,
      memoryBaseMs: stepTime.memoryBaseMs * 2.5,
      memoryPerContextTokenMs: stepTime.memoryPerContextTokenMs * 2.5,
      memoryPerDecodeSeqMs: stepTime.memoryPerDecodeSeqMs * 2.5,
      computePerPrefillTokenMs: stepTime.computePerPrefillTokenMs * 2.5,
    },
  }

  test('splits a steady stream of prompts in proportion to the prefill rates it learned, within 15 %', async (t) => {
    const engines = await startEngines(t, [H100_LLAMA3_8B, slow], 5)
    const aya = await startGateway(t, engines)
    const prompt = { words: 6000, maxTokens: 4, stream: true }
    /**
     * Twelve clients, each sending its next prompt when the last is answered, for `ms`: enough to
     * keep both engines prefilling, so each serves what its speed allows and no more.
     */
    const stream = async (ms: number) => {
      const until = performance.now() + ms
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          while (performance.now() < until) assert.equal(await chat(aya.url, prompt), 200)
        }),
      )
    }
    await stream(1000)
    const warm = decisionsOf(aya).length
    await stream(3000)
    const [fast, slower] = placedOn(decisionsOf(aya).slice(warm), engines) as [number, number]
    const [fastRate, slowRate] = (await learnedPrefillRates(aya, engines)) as [number, number]
    const learned = fastRate / slowRate
    assert.ok(learned > 1.5, `the slower engine learned slower: ${fastRate}, ${slowRate} tok/s`)
    const split = fast / slower
    assert.ok(
      Math.abs(split / learned - 1) < 0.15,
      `placed ${fast}:${slower} (${split.toFixed(2)}), learned ${fastRate.toFixed(0)}:${slowRate.toFixed(0)} tok/s (${learned.toFixed(2)})`,
    )
  })
})
