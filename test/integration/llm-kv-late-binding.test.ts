import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { ayaOptionsSchema } from '../../src/balancer/pickers/aya-options.ts'
import type { EngineServer } from '../../src/sim/engine-server.ts'
import { type EngineProfile, H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { OUTPUT_TOKENS_HEADER } from '../../src/sim/sim-headers.ts'
import { createSeededRandom } from '../../src/util/random.ts'
import {
  adminMetrics,
  loggedDecisions as decisions,
  metricSample,
  type RunningAya,
  startSimGateway,
} from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startSimEngines } from '../helpers/sim-engines.ts'

/** Engines of one profile under these ids (each endpoint's id in Aya); closed after the test. */
async function startEngines(
  t: TestContext,
  profile: EngineProfile,
  ids: readonly string[],
  speedup: number,
): Promise<Map<string, EngineServer>> {
  const engines = await startSimEngines(
    t,
    ids.map(() => profile),
    speedup,
  )
  return new Map(ids.map((id, i) => [id, engines[i]!]))
}

/** Aya's LLM route `/v1` to `engines` as the upstream `fleet` under the aya policy. */
const startGateway = (
  t: TestContext,
  engines: ReadonlyMap<string, EngineServer>,
  fleet: Record<string, unknown> = {},
): Promise<RunningAya> =>
  startSimGateway(
    t,
    {
      policy: 'aya',
      endpoints: [...engines].map(([id, engine]) => ({ id, url: engine.url })),
      ...fleet,
    },
    // Seeded, so the near-tie draws below are the same on every run.
    { log: { level: 'debug' }, deps: { random: createSeededRandom(7) } },
  )

/**
 * `n` space-separated three-letter words led by `tag` (one letter): `n` tokens to the simulated
 * engine, 4 characters a token to Aya, whose estimate starts there. Texts of different tags differ
 * from their first word.
 */
const words = (n: number, tag: string): string =>
  Array.from({ length: n }, (_, i) => `${tag}${(i % 676).toString(26).padStart(2, '0')}`).join(' ')

interface ChatBody {
  readonly choices: ReadonlyArray<{
    readonly message: { readonly role: string; readonly content: string }
    readonly finish_reason: string
  }>
  readonly usage: { readonly prompt_tokens: number; readonly completion_tokens: number }
}

/**
 * One non-streamed chat turn, answered 200 with a well-formed completion body. `outputTokens`,
 * when given, is the simulated engine's true output length (its private header), which it then
 * generates up to `maxTokens`.
 */
async function chat(
  aya: RunningAya,
  content: string,
  maxTokens: number,
  outputTokens?: number,
): Promise<ChatBody> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(outputTokens === undefined ? {} : { [OUTPUT_TOKENS_HEADER]: String(outputTokens) }),
    },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: maxTokens,
      messages: [{ role: 'user', content }],
    }),
  })
  const text = await res.body.text()
  assert.equal(res.statusCode, 200, text)
  const body = JSON.parse(text) as ChatBody
  assert.equal(body.choices.length, 1)
  const [choice] = body.choices
  assert.equal(choice!.message.role, 'assistant')
  assert.match(choice!.finish_reason, /^(stop|length)$/)
  assert.ok(body.usage.completion_tokens >= 1 && body.usage.completion_tokens <= maxTokens)
  assert.equal(choice!.message.content.split(' ').length, body.usage.completion_tokens)
  assert.equal(body.usage.prompt_tokens, content.split(' ').length + 1, 'one role-marker token')
  return body
}

/** One streamed chat turn, read to its end: 200, an SSE body ending in [DONE]. */
async function streamedChat(
  aya: RunningAya,
  content: string,
  maxTokens: number,
  signal?: AbortSignal,
): Promise<void> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    ...(signal ? { signal } : {}),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: maxTokens,
      stream: true,
      messages: [{ role: 'user', content }],
    }),
  })
  const text = await res.body.text()
  assert.equal(res.statusCode, 200, text)
  assert.match(text, /data: \[DONE\]\n\n$/)
}

/** The value of one sample in Prometheus text, 0 when absent. */
const sample = (metrics: string, name: string, labels: string): number =>
  metricSample(metrics, name, labels) ?? 0

const branchCount = (metrics: string, branch: string): number =>
  sample(metrics, 'aya_scheduler_decisions_total', `policy="aya",branch="${branch}"`)

/** Calls `read` every 10 ms until `done` settles; returns what it read. */
async function sampleWhile<T>(done: Promise<unknown>, read: () => T | Promise<T>): Promise<T[]> {
  let settled = false
  const settle = () => {
    settled = true
  }
  done.then(settle, settle)
  const seen: T[] = []
  while (!settled) {
    seen.push(await read())
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return seen
}

// 200 usable 16-token blocks: 3,216 KV tokens as the engine publishes them, of which aya plans
// at most 90 % (2,894). A 1,001-token prompt and 200 output tokens hold 76 blocks at the end.
const SMALL_KV: EngineProfile = { ...H100_LLAMA3_8B, name: 'h100-small-kv', numGpuBlocks: 201 }
const SMALL_KV_TOKENS = SMALL_KV.numGpuBlocks * SMALL_KV.blockSizeTokens
const BURST = 8
/** Slow enough that the burst arrives well before its first request can finish (~0.3 s). */
const SPEEDUP = 5
const PROMPT_WORDS = 1000
const OUTPUT_TOKENS = 200
/**
 * Requests aya lets hold the engine's KV at once: each is charged its prompt plus the output
 * predictor's mean (its prior's, capped at 200, is ~160; learned, 200), and 2 × 1,163 ≤ 2,894 <
 * 3 × 1,163.
 */
const FITS = 2

/**
 * Sends BURST concurrent 1,001-token prompts, each generating 200 tokens, through `aya` to its
 * one small-KV engine, and watches the engine and aya's admission queue while they run.
 */
async function kvBurst(aya: RunningAya, engine: EngineServer) {
  const tags = 'abcdefgh'
  const sent = Promise.all(
    Array.from({ length: BURST }, (_, i) =>
      chat(aya, words(PROMPT_WORDS, tags[i]!), OUTPUT_TOKENS, OUTPUT_TOKENS),
    ),
  )
  const [engineSeen, queueSeen] = await Promise.all([
    sampleWhile(sent, () => engine.engine.stats()),
    sampleWhile(sent, async () => {
      const metrics = await adminMetrics(aya)
      const labels = 'upstream="fleet",priority="0"'
      return {
        depth: sample(metrics, 'aya_admission_queue_depth', labels),
        bytes: sample(metrics, 'aya_admission_queue_bytes', labels),
      }
    }),
  ])
  const bodies = await sent
  assert.equal(bodies.length, BURST)
  for (const body of bodies) assert.equal(body.usage.completion_tokens, OUTPUT_TOKENS)
  return {
    /** The most requests the engine held at once, running or waiting. */
    engineHeld: Math.max(...engineSeen.map((s) => s.running + s.waiting)),
    engineWaiting: Math.max(...engineSeen.map((s) => s.waiting)),
    /** vllm:num_preemptions_total, read from the engine's own /metrics. */
    preemptions: sample(
      await (await request(`${engine.url}/metrics`)).body.text(),
      'vllm:num_preemptions_total',
      `model_name="${SMALL_KV.modelName}",engine="0"`,
    ),
    /** The deepest admission queue the admin /metrics showed while the burst ran. */
    queueDepth: Math.max(...queueSeen.map((s) => s.depth)),
    /** Each scrape's queue: its depth and the body bytes it held. */
    queueSeen,
    metrics: await adminMetrics(aya),
  }
}

describe('aya late binding on KV headroom, over sockets', () => {
  test('without admission, a burst past the engine KV reaches the engine at once: it queues prompts and preempts running ones', async (t) => {
    const engine = (await startEngines(t, SMALL_KV, ['a'], SPEEDUP)).get('a')!
    const aya = await startGateway(t, new Map([['a', engine]]), {
      // The capacity the engine publishes in vllm:cache_config_info, so that the burst does not
      // race Aya's first scrape of it.
      policyOptions: { defaultKvCapacityTokens: SMALL_KV_TOKENS },
    })
    const seen = await kvBurst(aya, engine)
    // The engine takes prompts while their blocks fit (three prompts of 63 blocks), then their decodes
    // outgrow the 200 blocks and it preempts.
    assert.ok(seen.engineHeld >= 2 * FITS, `engine held ${seen.engineHeld}`)
    assert.ok(seen.engineWaiting >= 3, `engine waiting ${seen.engineWaiting}`)
    assert.ok(seen.preemptions > 0, `preemptions ${seen.preemptions}`)
    // Past the KV room aya places the least-bad endpoint anyway: saturated, never queued.
    assert.ok(branchCount(seen.metrics, 'saturated') >= BURST / 2, seen.metrics)
    assert.equal(branchCount(seen.metrics, 'queue'), 0)
  })

  test('with admission, the excess of the same burst waits in the router queue and is bound as KV frees: the engine never holds more than fits, nor preempts', async (t) => {
    const engine = (await startEngines(t, SMALL_KV, ['a'], SPEEDUP)).get('a')!
    const aya = await startGateway(t, new Map([['a', engine]]), {
      // An SLO no prompt here misses: KV headroom alone makes requests wait.
      admission: { ttftSloMs: 10_000, maxWaitMs: 20_000 },
      policyOptions: { defaultKvCapacityTokens: SMALL_KV_TOKENS },
    })
    const seen = await kvBurst(aya, engine)
    assert.ok(seen.engineHeld <= FITS, `engine held ${seen.engineHeld}`)
    assert.equal(seen.preemptions, 0)
    assert.ok(seen.queueDepth >= 1, `admission queue depth seen ${seen.queueDepth}`)
    assert.equal(
      sample(seen.metrics, 'aya_admission_queue_depth', 'upstream="fleet",priority="0"'),
      0,
      'the queue is empty once the burst is answered',
    )
    // The bytes gauge holds the waiting bodies: about 5 kB each (1,000 short words), none once
    // the queue is empty.
    for (const { depth, bytes } of seen.queueSeen) {
      assert.ok(
        bytes >= depth * 2 * PROMPT_WORDS && bytes <= depth * 64 * 1024,
        `${depth} ${bytes}`,
      )
    }
    assert.equal(
      sample(seen.metrics, 'aya_admission_queue_bytes', 'upstream="fleet",priority="0"'),
      0,
    )
    // The requests past what fits (BURST - FITS when the burst arrives together) waited, each
    // counted once as it queued and again when it was placed: one placement per request.
    const queued = decisions(aya).filter((d) => d.branch === 'queue')
    assert.ok(queued.length >= BURST / 2, `${queued.length} queued`)
    assert.equal(branchCount(seen.metrics, 'queue'), queued.length)
    assert.equal(branchCount(seen.metrics, 'cold'), BURST)
    assert.equal(branchCount(seen.metrics, 'saturated'), 0)
    // They waited for KV room, not for the TTFT SLO.
    for (const d of queued) {
      assert.equal(d.candidates.length, 1)
      const [only] = d.candidates
      assert.equal(only!.kvOk, false, JSON.stringify(d))
      assert.ok(only!.predictedTtftMs < 10_000, JSON.stringify(d))
    }
  })
})

describe('the aya saturation valve and near-tie draws, over sockets', () => {
  test('keeps a warm prefix on its endpoint while that is idle, and sends it to a cold one once the saturation valve fires', async (t) => {
    // Real time: the prefill queued below lasts about a second.
    const engines = await startEngines(t, H100_LLAMA3_8B, ['a', 'b'], 1)
    const aya = await startGateway(t, engines)
    // The shared head of every prompt below (200 words), and a long document that starts with it.
    const head = words(200, 'q')
    const doc = `${head} ${words(2800, 'r')}`
    await chat(aya, `${doc} ${words(20, 'z')}`, 4)
    const [first] = decisions(aya)
    assert.ok(first)
    assert.equal(first.branch, 'cold')
    const warmId = first.chosen
    const coldId = warmId === 'a' ? 'b' : 'a'

    // Idle: a question after the head goes where the head is cached.
    await chat(aya, `${head} ${words(100, 'p')}`, 4)
    const idle = decisions(aya).at(-1)!
    assert.equal(idle.branch, 'warm', JSON.stringify(idle))
    assert.equal(idle.chosen, warmId)

    // Four long prompts on the document, each 8,000 tokens beyond it: their hit on the document
    // (3,000 tokens, credited 16×) keeps them on its endpoint too, where their prefill queues.
    // Aborted if an assertion fails before they are awaited, so that none is left unhandled.
    const streams = new AbortController()
    t.after(() => streams.abort())
    const busy = Promise.all(
      ['s', 't', 'u', 'v'].map((tag) =>
        streamedChat(aya, `${doc} ${words(8000, tag)}`, 4, streams.signal),
      ),
    )
    busy.catch(() => {})
    await eventually(() => decisions(aya).length === 6, 'the four long prompts placed')
    const pending = (metrics: string, id: string) =>
      sample(metrics, 'aya_endpoint_pending_prefill_tokens', `upstream="fleet",endpoint="${id}"`)
    const placed = await adminMetrics(aya)
    // The last of them alone is 8,000 tokens that reach their first token ~1 s from now.
    assert.ok(pending(placed, warmId) >= 8000, `${pending(placed, warmId)} tokens queued`)
    assert.equal(pending(placed, coldId), 0)
    await chat(aya, `${head} ${words(100, 'o')}`, 4)
    await busy
    const all = decisions(aya)
    assert.deepEqual(
      all.slice(2, 6).map((d) => [d.branch, d.chosen]),
      Array(4).fill(['warm', warmId]),
    )
    // The question placed after them: its head's hit no longer outweighs the queue.
    const valve = all.filter((d) => d.promptTokens < 1000).at(-1)!
    assert.equal(valve.branch, 'valve', JSON.stringify(valve))
    assert.equal(valve.chosen, coldId)
    const warm = valve.candidates.find((c) => c.endpoint === warmId)!
    const cold = valve.candidates.find((c) => c.endpoint === coldId)!
    assert.ok(warm.hitTokens >= 150 && cold.hitTokens === 0, JSON.stringify(valve))
    // The valve's rule: the warm endpoint's predicted TTFT exceeds the cold one's by more than
    // affinityCredit times the prefill its hit saves.
    const { affinityCredit } = ayaOptionsSchema.parse({})
    const meanRate = (warm.prefillTokensPerSec + cold.prefillTokensPerSec) / 2
    const savedMs = ((affinityCredit * warm.hitTokens) / meanRate) * 1000
    assert.ok(warm.predictedTtftMs - cold.predictedTtftMs > savedMs, JSON.stringify(valve))
    assert.ok(warm.costMs > cold.costMs, JSON.stringify(valve))

    const served = engines.get(coldId)!.engine.stats().requestSuccess
    assert.equal(served.stop + served.length, 1, 'the cold engine served the question, only it')
    const metrics = await adminMetrics(aya)
    assert.equal(branchCount(metrics, 'valve'), 1)
    // A long prompt held behind the others when the cold engine ran out of work moved, and its
    // hit on the document placed it back on the warm endpoint: one more warm placement each.
    assert.equal(branchCount(metrics, 'warm'), 5 + branchCount(metrics, 'moved'))
    assert.equal(branchCount(metrics, 'cold'), 1)
  })

  const NEAR_TIE_SLACK_MS = 250

  /** Thirty identical short prompts one after another over three engines; who served each. */
  async function identicalPrompts(t: TestContext, nearTieChoices: number) {
    const engines = await startEngines(t, H100_LLAMA3_8B, ['a', 'b', 'c'], 20)
    // Three 64-character blocks of hit are worth ~80 ms of prefill credit at the prior rate:
    // within this slack the warm endpoint is a near tie of the cold ones, not a sure winner.
    const aya = await startGateway(t, engines, {
      policyOptions: { interferenceSlackMs: NEAR_TIE_SLACK_MS, nearTieChoices },
    })
    const prompt = words(60, 'k')
    for (let i = 0; i < 30; i++) await chat(aya, prompt, 2)
    return { all: decisions(aya), metrics: await adminMetrics(aya) }
  }

  test('spreads identical short prompts over more than one endpoint by the power of two choices among near ties', async (t) => {
    // Two of three endpoints are drawn: while one holds the prompt, it is left out one time in
    // three, and a cold one takes the prompt (unseeded, all 29 draws would keep it with
    // probability 1e-5; the gateway's draws are seeded).
    const { all, metrics } = await identicalPrompts(t, 2)
    const ties = all.filter((d) => d.branch === 'tie')
    assert.ok(ties.length >= 1, JSON.stringify(all.map((d) => d.branch)))
    assert.equal(branchCount(metrics, 'tie'), ties.length)
    for (const d of ties) {
      const warmest = Math.max(...d.candidates.map((c) => c.hitTokens))
      const chosen = d.candidates.find((c) => c.endpoint === d.chosen)!
      assert.ok(chosen.hitTokens < warmest, JSON.stringify(d))
      const bestCost = Math.min(...d.candidates.map((c) => c.costMs))
      for (const c of d.candidates) {
        assert.ok(c.costMs <= bestCost + NEAR_TIE_SLACK_MS, JSON.stringify(d))
      }
    }
    assert.ok(new Set(all.map((d) => d.chosen)).size >= 2)
  })

  test('herds the same prompts onto the one warm endpoint when deciding among every near tie', async (t) => {
    const { all, metrics } = await identicalPrompts(t, 0)
    assert.equal(new Set(all.map((d) => d.chosen)).size, 1)
    assert.deepEqual(
      all.map((d) => d.branch),
      ['cold', ...Array(29).fill('warm')],
    )
    assert.equal(branchCount(metrics, 'warm'), 29)
  })
})
