import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import type { EngineServer } from '../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import {
  adminMetrics,
  loggedDecisions as decisionsOf,
  metricSample,
  type RunningAya,
  startSimGateway,
} from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { endpointIdOf as idOf, startSimEngines as startEngines } from '../helpers/sim-engines.ts'

const SERVED = H100_LLAMA3_8B.modelName

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
  /**
   * Opens the prompt in place of a numbered word: chats with the same prefix and words send one
   * prompt, which the prefix index can hold.
   */
  readonly prefix?: string
  readonly maxTokens: number
  readonly stream?: boolean
  /** The model named: Aya's registry name by default, the served name when sent to an engine. */
  readonly model?: string
  readonly signal?: AbortSignal
}

/** Numbers the prompts that must not share a prefix with any other. */
let promptCount = 0

/**
 * One chat completion, read to its end; answers the status. Without a `prefix`, a numbered first
 * word keeps prompts from sharing one, so every one is cold.
 */
async function chat(baseUrl: string, options: ChatOptions): Promise<number> {
  const res = await request(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: options.model ?? 'llama',
      max_tokens: options.maxTokens,
      messages: [
        {
          role: 'user',
          content: `${options.prefix ?? `prompt-${++promptCount}`} ${'abc '.repeat(options.words)}`,
        },
      ],
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

/** How many of these decisions placed their request on each engine, in the engines' order. */
const placedOn = (decisions: readonly AyaDecision[], engines: readonly EngineServer[]) =>
  engines.map((engine) => decisions.filter((d) => d.chosen === idOf(engine)).length)

/** The candidate for `engine` in a decision. */
const candidateOf = (decision: AyaDecision, engine: EngineServer) => {
  const candidate = decision.candidates.find((c) => c.endpoint === idOf(engine))
  assert.ok(candidate, `${idOf(engine)} is a candidate of ${JSON.stringify(decision)}`)
  return candidate
}

/** A per-endpoint gauge Aya exports, for each engine: undefined where it has no value yet. */
async function endpointGauges(aya: RunningAya, name: string, engines: readonly EngineServer[]) {
  const text = await adminMetrics(aya)
  return engines.map((engine) =>
    metricSample(text, name, `upstream="fleet",endpoint="${idOf(engine)}"`),
  )
}

/** The prefill rate Aya exports for each engine, learned from its responses. */
async function learnedPrefillRates(aya: RunningAya, engines: readonly EngineServer[]) {
  const rates = await endpointGauges(aya, 'aya_endpoint_prefill_tokens_per_second', engines)
  return rates.map((rate, i) => {
    assert.ok(rate !== undefined, `a learned prefill rate for ${idOf(engines[i]!)}`)
    return rate
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Aya scrapes every 50 ms: this many real milliseconds cover several scrapes. */
const SEVERAL_SCRAPES_MS = 300

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
    await sleep(SEVERAL_SCRAPES_MS)

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
    assert.ok(loaded.engine.stats().waiting >= 6, 'the direct load still queued at the end')

    // The clients go away: the engine drains, and once scraped idle it takes work again.
    bypass.abort()
    await Promise.all(direct)
    await eventually(() => loaded.engine.stats().waiting === 0, 'the direct load gone')
    await sleep(SEVERAL_SCRAPES_MS)
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
    await sleep(SEVERAL_SCRAPES_MS)
    const statuses = await Promise.all(Array.from({ length: 8 }, () => chat(aya.url, burst)))
    assert.deepEqual(statuses, Array(8).fill(200))
    const decisions = decisionsOf(aya)
    // One decision per prompt, and one more for each that pacing moved to an idle engine.
    const moved =
      metricSample(
        await adminMetrics(aya),
        'aya_scheduler_decisions_total',
        'policy="aya",branch="moved"',
      ) ?? 0
    assert.equal(decisions.length, 8 + moved)
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

  /**
   * Through Aya to one engine, one chat at a time: document 0 twice, sixteen other documents, the
   * last of them again, and document 0 again. Answers the tokens each repeat found cached there.
   */
  async function repeatsAfterOtherDocuments(t: TestContext, profile: EngineProfile) {
    const engines = await startEngines(t, [profile], 10)
    const [engine] = engines as [EngineServer]
    const aya = await startGateway(t, engines)
    await sleep(SEVERAL_SCRAPES_MS)
    const hitTokensOf = async (document: number) => {
      const seen = decisionsOf(aya).length
      const status = await chat(aya.url, {
        prefix: `document-${document}`,
        words: 2000,
        maxTokens: 2,
      })
      assert.equal(status, 200)
      const decisions = decisionsOf(aya).slice(seen)
      assert.equal(decisions.length, 1)
      return candidateOf(decisions[0]!, engine).hitTokens
    }
    assert.equal(await hitTokensOf(0), 0, 'document 0 is cold at first')
    const repeated = await hitTokensOf(0)
    for (let document = 1; document <= 16; document++) {
      assert.equal(await hitTokensOf(document), 0, `document ${document} is cold`)
    }
    const lastAgain = await hitTokensOf(16)
    return { repeated, lastAgain, afterOthers: await hitTokensOf(0) }
  }

  test('sizes the prefix index from the KV the engine publishes, so a small engine forgets a document a large one still holds', async (t) => {
    // A document is 2,000 words, 8,000 characters: 125 index blocks of 64. At 4 characters a token
    // the small engine's 12,800 tokens are 800 blocks, 6.4 documents, so the 16 that follow
    // document 0 overflow it 2.5 times; the H100's 26,900 blocks hold all 17 twelve times over.
    const small = await repeatsAfterOtherDocuments(t, smallKv)
    const large = await repeatsAfterOtherDocuments(t, H100_LLAMA3_8B)
    for (const { repeated, lastAgain } of [small, large]) {
      assert.ok(repeated >= 1900, `document 0 cached once sent: ${repeated} tokens`)
      assert.ok(lastAgain >= 1900, `the latest document still cached: ${lastAgain} tokens`)
    }
    assert.equal(small.afterOthers, 0, 'the small engine’s index let document 0 go')
    assert.ok(
      large.afterOthers >= 1900,
      `the large engine’s index still holds document 0: ${large.afterOthers} tokens`,
    )
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
     * Twelve clients, each sending its next prompt when the last is answered, for `durationMs`: enough to
     * keep both engines prefilling, so each serves what its speed allows and no more.
     */
    const stream = async (durationMs: number) => {
      const until = performance.now() + durationMs
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

describe('the aya scheduler keeps decode headroom with maxItlMs over real sockets', () => {
  // Every decoding sequence adds 10 ms of compute to an engine step, so eight streams make steps
  // of 81 ms: about 40 ms a token in real time at speedup 2, four times the 10-ms bound.
  const crowdedDecode: EngineProfile = {
    ...H100_LLAMA3_8B,
    name: 'h100-crowded-decode',
    stepTime: { ...H100_LLAMA3_8B.stepTime, computePerDecodeSeqMs: 10 },
  }
  const maxItlMs = 10

  /**
   * Eight long streams of one document through Aya, which keeps them together on one engine for
   * their shared prefix; once Aya has seen them decode at over twice `maxItlMs` a token there, six
   * more chats of the same document, one at a time. Answers the engine the streams went to, the
   * other, and the six chats' decisions.
   */
  async function askBesideStreams(t: TestContext, policyOptions: Record<string, unknown>) {
    const engines = await startEngines(t, [crowdedDecode, crowdedDecode], 2)
    const aya = await startGateway(t, engines, { policyOptions })
    const document = { prefix: `document-${++promptCount}`, words: 1000 }
    const streaming = new AbortController()
    t.after(() => streaming.abort())
    const streams = Array.from({ length: 8 }, () =>
      chat(aya.url, {
        ...document,
        maxTokens: 50_000,
        stream: true,
        signal: streaming.signal,
      }).catch(() => 0),
    )
    await eventually(() => decisionsOf(aya).length === 8, 'the streams placed')
    const placed = placedOn(decisionsOf(aya), engines)
    assert.ok(placed.includes(8), `the streams share one engine: ${placed}`)
    const [busy, other] = (placed[0] === 8 ? engines : [...engines].reverse()) as [
      EngineServer,
      EngineServer,
    ]
    let itlMs = 0
    await eventually(async () => {
      const [seconds] = await endpointGauges(aya, 'aya_endpoint_decode_itl_seconds', [busy])
      itlMs = (seconds ?? 0) * 1000
      return itlMs > 2 * maxItlMs
    }, 'the streams decoding slowly')
    const seen = decisionsOf(aya).length
    await chatInTurn(aya, 6, { ...document, maxTokens: 2 })
    const asked = decisionsOf(aya).slice(seen)
    streaming.abort()
    await Promise.all(streams)
    return { busy, other, asked, itlMs }
  }

  test('leaves out the engine whose streams decode slower than maxItlMs, and with it off does not', async (t) => {
    const bounded = await askBesideStreams(t, { maxItlMs })
    assert.deepEqual(
      placedOn(bounded.asked, [bounded.busy, bounded.other]),
      [0, 6],
      'all to the engine without the streams',
    )
    // The first gives up the document's hit on the busy engine, as the valve does; the rest find
    // it on both.
    assert.deepEqual(
      bounded.asked.map((d) => d.branch),
      ['valve', 'cold', 'cold', 'cold', 'cold', 'cold'],
    )
    for (const decision of bounded.asked) {
      const [busy, other] = [
        candidateOf(decision, bounded.busy),
        candidateOf(decision, bounded.other),
      ]
      assert.equal(busy.decodeOk, false, `streams at ${bounded.itlMs.toFixed(1)} ms a token`)
      assert.ok(busy.hitTokens >= 900, `left out though it holds the document: ${busy.hitTokens}`)
      assert.equal(other.decodeOk, true)
    }

    // The same streams with the bound off: the engine holding the document keeps its chats.
    const unbounded = await askBesideStreams(t, {})
    assert.deepEqual(
      placedOn(unbounded.asked, [unbounded.busy, unbounded.other]),
      [6, 0],
      'all to the engine holding the document',
    )
    for (const decision of unbounded.asked) {
      assert.ok(
        decision.candidates.every((c) => c.decodeOk),
        `streams at ${unbounded.itlMs.toFixed(1)} ms a token: ${JSON.stringify(decision.candidates)}`,
      )
    }
  })
})
