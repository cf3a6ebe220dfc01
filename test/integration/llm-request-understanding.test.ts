import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base'
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base'
import { request } from 'undici'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import { flattenChat } from '../../src/llm/chat-template.ts'
import { createLlmSignals, type LlmSignals } from '../../src/llm/llm-signals.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { OUTPUT_TOKENS_HEADER } from '../../src/sim/sim-headers.ts'
import { createSystemClock } from '../../src/util/clock.ts'
import { createSeededRandom } from '../../src/util/random.ts'
import { loggedDecisions, type RunningAya, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { type FrontedEngine, startFrontedEngines } from '../helpers/fronted-engines.ts'

const LLAMA = H100_LLAMA3_8B.modelName

/**
 * Engines serving `models` (the first is the engine's own name; the others it answers as vLLM
 * answers a LoRA adapter's), as the aya upstream `fleet` (endpoints `gpu-0`, `gpu-1`, …) behind
 * Aya's models gateway on the route `chat`, decisions logged. Closed after the test.
 */
async function startFleet(
  t: TestContext,
  options: {
    readonly engines: number
    readonly speedup: number
    readonly served: readonly [string, ...string[]]
    readonly models: Record<string, unknown>
    readonly llmSignals?: LlmSignals
  },
): Promise<{ aya: RunningAya; fronts: FrontedEngine[] }> {
  const fronts = await startFrontedEngines(t, {
    profile: H100_LLAMA3_8B,
    speedup: options.speedup,
    count: options.engines,
    models: options.served,
  })
  const aya = await startAya(
    {
      log: { level: 'debug' },
      routes: [{ name: 'chat', match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: options.models,
      upstreams: {
        fleet: {
          policy: 'aya',
          endpoints: fronts.map((front, i) => ({ id: `gpu-${i}`, url: front.url })),
        },
      },
    },
    {},
    {
      // Seeded, so near-tie draws are the same on every run.
      random: createSeededRandom(7),
      ...(options.llmSignals ? { llmSignals: options.llmSignals } : {}),
    },
  )
  t.after(() => aya.close())
  return { aya, fronts }
}

interface ChatTurn {
  readonly model: string
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content: string }>
  readonly maxTokens: number
  /** The simulated engine's true output length (its private header), up to `maxTokens`. */
  readonly outputTokens?: number
}

/** One non-streamed chat completion through Aya, answered 200. */
async function chat(aya: RunningAya, turn: ChatTurn): Promise<void> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(turn.outputTokens === undefined
        ? {}
        : { [OUTPUT_TOKENS_HEADER]: String(turn.outputTokens) }),
    },
    body: JSON.stringify({
      model: turn.model,
      max_tokens: turn.maxTokens,
      messages: turn.messages,
    }),
  })
  const text = await res.body.text()
  assert.equal(res.statusCode, 200, text)
}

const userTurn = (content: string) => [{ role: 'user', content }]

/** The candidate scored for `endpoint` in a decision. */
function candidate(decision: AyaDecision, endpoint: string) {
  const found = decision.candidates.find((c) => c.endpoint === endpoint)
  assert.ok(found, `${endpoint} among the candidates of ${JSON.stringify(decision)}`)
  return found
}

/** `n` space-separated four-character words led by `tag`: about 5 characters a word. */
const words = (n: number, tag: string): string =>
  Array.from({ length: n }, (_, i) => `${tag}${(i % 4096).toString(16).padStart(3, '0')}`).join(' ')

describe('prompt tokens', () => {
  test('are counted with the model family’s own tokenizer, and estimated from characters for other models', async (t) => {
    const { aya } = await startFleet(t, {
      engines: 1,
      speedup: 20,
      served: [LLAMA, 'gpt-4o', 'gpt-4'],
      models: {
        'gpt-4o': { deployments: [{ upstream: 'fleet' }] },
        // Its registry name says nothing: the served name picks the vocabulary.
        legacy: { deployments: [{ upstream: 'fleet', model: 'gpt-4' }] },
        llama: { deployments: [{ upstream: 'fleet', model: LLAMA }] },
      },
    })
    const messages = [
      { role: 'system', content: 'You are the on-call assistant. Answer in English or 日本語.' },
      {
        role: 'user',
        content:
          'Summarise the incident: at 03:14 UTC the p99 latency of /v1/chat/completions rose ' +
          'from 180 ms to 2.4 s, and 17 % of requests to gpu-3 timed out. ' +
          '東京リージョンの負荷分散装置の設定を確認し、原因を三行で説明してください。',
      },
    ]
    for (const model of ['gpt-4o', 'legacy', 'llama']) {
      await chat(aya, { model, messages, maxTokens: 4 })
    }

    const text = flattenChat(messages)
    const [gpt4o, legacy, llama] = loggedDecisions(aya)
    assert.equal(gpt4o?.model, 'gpt-4o')
    assert.equal(gpt4o.promptTokens, o200kTokens(text))
    assert.equal(legacy?.model, 'gpt-4')
    assert.equal(legacy.promptTokens, cl100kTokens(text))
    // Llama's tokenizer is not known: 4 characters a token until its usage corrects the ratio.
    assert.equal(llama?.model, LLAMA)
    assert.equal(llama.promptTokens, Math.ceil(text.length / 4))
    // On this mixed text (CJK, numbers, template markers) the estimate is a third short, and the
    // two vocabularies differ too.
    const counts = `o200k ${gpt4o.promptTokens}, cl100k ${legacy.promptTokens}, estimate ${llama.promptTokens}`
    assert.ok(gpt4o.promptTokens > 1.25 * llama.promptTokens, counts)
    assert.ok(legacy.promptTokens > 1.1 * gpt4o.promptTokens, counts)
  })
})

interface RecordedPrediction {
  readonly promptText: string
  readonly promptTokens: number
  readonly maxTokens: number | undefined
  readonly outputTokens: number
}

/**
 * Aya's LLM signals, recording the output the scheduler predicts for each request it scores (the
 * output its KV accounting charges) and counting the responses they learn from.
 */
function recordingSignals(): {
  readonly signals: LlmSignals
  readonly predictions: RecordedPrediction[]
  readonly learned: () => number
} {
  const signals = createLlmSignals({ clock: createSystemClock() })
  const predictions: RecordedPrediction[] = []
  let learned = 0
  return {
    predictions,
    learned: () => learned,
    signals: {
      ...signals,
      predictedOutput(llm) {
        const outputTokens = signals.predictedOutput(llm)
        const { promptText, promptTokens, maxTokens } = llm
        predictions.push({ promptText, promptTokens, maxTokens, outputTokens })
        return outputTokens
      },
      observe(observation) {
        signals.observe(observation)
        learned++
      },
    },
  }
}

const OUTPUT_MODEL = { 'gpt-4o': { deployments: [{ upstream: 'fleet' }] } }

/** A chat prompt of 17 gpt-4o tokens as Aya counts it (its `<|user|>` turn included). */
const shortPrompt = (i: number) => userTurn(`Question ${i}: which port does the admin listen on?`)

const PARAGRAPH =
  'The admin listener serves health, readiness and Prometheus metrics on its own port, apart ' +
  'from the public listeners, so that orchestrators can probe it without a token. '

/** A chat prompt of about 307 gpt-4o tokens. */
const longPrompt = (i: number) => userTurn(`Document ${i}. ${PARAGRAPH.repeat(9)}`)

/** Sends `turns`, eight at a time, and waits until Aya has learned from every response. */
async function teach(
  aya: RunningAya,
  recording: ReturnType<typeof recordingSignals>,
  turns: readonly ChatTurn[],
): Promise<void> {
  const before = recording.learned()
  for (let i = 0; i < turns.length; i += 8) {
    await Promise.all(turns.slice(i, i + 8).map((turn) => chat(aya, turn)))
  }
  await eventually(
    () => recording.learned() >= before + turns.length,
    'Aya learning from every response',
  )
}

/**
 * Sends `turns` together while the engine's door is held, so every one is predicted before any
 * answer teaches the predictor more, and returns the output predicted for each.
 */
async function predictTogether(
  aya: RunningAya,
  front: FrontedEngine,
  recording: ReturnType<typeof recordingSignals>,
  turns: readonly ChatTurn[],
): Promise<number[]> {
  const before = front.arrived
  front.hold()
  const answered = Promise.all(turns.map((turn) => chat(aya, turn)))
  await Promise.race([front.arrivals(before + turns.length), answered])
  front.release()
  await answered
  return turns.map((turn) => {
    const promptText = flattenChat(turn.messages)
    const found = recording.predictions.find(
      (p) => p.promptText === promptText && p.maxTokens === turn.maxTokens,
    )
    assert.ok(found, `a prediction for ${promptText.slice(0, 40)} (max_tokens ${turn.maxTokens})`)
    return found.outputTokens
  })
}

/** One engine serving gpt-4o, behind Aya with signals that record every prediction. */
async function startPredictingFleet(t: TestContext) {
  const recording = recordingSignals()
  const fleet = await startFleet(t, {
    engines: 1,
    speedup: 20,
    served: [LLAMA, 'gpt-4o'],
    models: OUTPUT_MODEL,
    llmSignals: recording.signals,
  })
  return { ...fleet, recording }
}

describe('predicted output tokens', () => {
  test('come from responses in the request’s max_tokens bucket, and from every cap where its bucket has none', async (t) => {
    const { aya, fronts, recording } = await startPredictingFleet(t)
    // Capped at 64 (bucket 33–64), the answers run to 60; capped at 4096 (2049–4096), to 6.
    const lessons: ChatTurn[] = []
    for (let i = 0; i < 24; i++) {
      lessons.push({ model: 'gpt-4o', messages: shortPrompt(i), maxTokens: 64, outputTokens: 60 })
      lessons.push({ model: 'gpt-4o', messages: shortPrompt(i), maxTokens: 4096, outputTokens: 6 })
    }
    await teach(aya, recording, lessons)

    const [sameAs64, sameAs4096, unseen] = await predictTogether(aya, fronts[0]!, recording, [
      { model: 'gpt-4o', messages: shortPrompt(100), maxTokens: 40 },
      { model: 'gpt-4o', messages: shortPrompt(101), maxTokens: 3000 },
      { model: 'gpt-4o', messages: shortPrompt(102), maxTokens: 100 },
    ])
    const seen = `max_tokens 40: ${sameAs64}, 3000: ${sameAs4096}, 100: ${unseen}`
    t.diagnostic(seen)
    // 40 shares 64's bucket, whose answers all ran past 40: up to its cap.
    assert.ok(sameAs64! >= 36 && sameAs64! <= 40, seen)
    // 3000 shares 4096's: short, however high its cap.
    assert.ok(sameAs4096! <= 12, seen)
    // 100 has a bucket of its own that no response fell in: every cap's answers, mixed.
    assert.ok(unseen! > 20 && unseen! < 50, seen)
  })

  test('come from responses in the request’s prompt-length bucket', async (t) => {
    const { aya, fronts, recording } = await startPredictingFleet(t)
    // Under one cap, short prompts (16–31 tokens) get 8-token answers, long ones (256–511) 160.
    const lessons: ChatTurn[] = []
    for (let i = 0; i < 32; i++) {
      lessons.push({ model: 'gpt-4o', messages: shortPrompt(i), maxTokens: 512, outputTokens: 8 })
      lessons.push({ model: 'gpt-4o', messages: longPrompt(i), maxTokens: 512, outputTokens: 160 })
    }
    await teach(aya, recording, lessons)
    // Counted with gpt-4o's tokenizer, each prompt falls well inside its bucket.
    for (const { promptTokens } of recording.predictions) {
      assert.ok(
        (promptTokens >= 16 && promptTokens < 32) || (promptTokens >= 256 && promptTokens < 512),
        `${promptTokens} prompt tokens`,
      )
    }

    const [short, long] = await predictTogether(aya, fronts[0]!, recording, [
      { model: 'gpt-4o', messages: shortPrompt(100), maxTokens: 512 },
      { model: 'gpt-4o', messages: longPrompt(100), maxTokens: 512 },
    ])
    const seen = `short prompt: ${short}, long prompt: ${long}`
    t.diagnostic(seen)
    // Each leans to its own bucket's answers, away from their overall mean of 84.
    assert.ok(short! < 84 && long! > 84 && long! - short! > 60, seen)
  })

  test('are the mean of skewed answer lengths, not their median', async (t) => {
    const { aya, fronts, recording } = await startPredictingFleet(t)
    // Three answers in four are 4 tokens, one is 200: median 4, 90th percentile 200, mean 53.
    const lessons: ChatTurn[] = []
    for (let i = 0; i < 32; i++) {
      const outputTokens = i % 4 === 3 ? 200 : 4
      lessons.push({ model: 'gpt-4o', messages: shortPrompt(i), maxTokens: 256, outputTokens })
    }
    await teach(aya, recording, lessons)

    const [predicted] = await predictTogether(aya, fronts[0]!, recording, [
      { model: 'gpt-4o', messages: shortPrompt(100), maxTokens: 256 },
    ])
    t.diagnostic(`predicted ${predicted}`)
    assert.ok(predicted! > 40 && predicted! < 70, `predicted ${predicted}`)
  })
})

/** Resolves when the next inference request reaches any of `fronts`. */
const nextArrival = (fronts: readonly FrontedEngine[]): Promise<void> =>
  Promise.race(fronts.map((front) => front.arrivals(front.arrived + 1)))

describe('the prefix index', () => {
  test('keeps each served model’s prompts apart on the endpoints they share', async (t) => {
    const { aya } = await startFleet(t, {
      engines: 2,
      speedup: 20,
      served: [LLAMA, 'llama-sql'],
      // The adapter is served under its own name by the base model's engines.
      models: {
        llama: { deployments: [{ upstream: 'fleet', model: LLAMA }], loras: ['llama-sql'] },
      },
    })
    const messages = userTurn(words(600, 'd'))
    for (const model of ['llama', 'llama-sql', 'llama']) {
      await chat(aya, { model, messages, maxTokens: 4 })
    }

    const [base, adapter, again] = loggedDecisions(aya)
    assert.equal(base?.model, LLAMA)
    assert.deepEqual(
      base.candidates.map((c) => c.hitTokens),
      [0, 0],
    )
    // The adapter's prompt is new everywhere, even where the same text went for the base model.
    assert.equal(adapter?.model, 'llama-sql')
    assert.deepEqual(
      adapter.candidates.map((c) => c.hitTokens),
      [0, 0],
    )
    // The base model's repeat finds it where it went, and goes there.
    assert.equal(again?.model, LLAMA)
    const warm = candidate(again, base.chosen)
    t.diagnostic(`${again.promptTokens} prompt tokens, ${warm.hitTokens} hit on ${base.chosen}`)
    assert.ok(warm.hitTokens >= 0.9 * again.promptTokens, JSON.stringify(again))
    assert.equal(again.chosen, base.chosen)
  })

  test('holds a prompt from its dispatch, before the engine has seen it', async (t) => {
    const { aya, fronts } = await startFleet(t, {
      engines: 2,
      speedup: 20,
      served: [LLAMA],
      models: { llama: { deployments: [{ upstream: 'fleet', model: LLAMA }] } },
    })
    // Every request waits at its engine's door: sent, but neither prefilled nor answered.
    for (const front of fronts) front.hold()
    const turn = { model: 'llama', messages: userTurn(words(600, 'e')), maxTokens: 4 }
    const first = chat(aya, turn)
    await Promise.race([nextArrival(fronts), first])
    const second = chat(aya, turn)
    await Promise.race([nextArrival(fronts), second])

    const [placed, repeat] = loggedDecisions(aya)
    assert.deepEqual(
      placed?.candidates.map((c) => c.hitTokens),
      [0, 0],
    )
    const warm = candidate(repeat!, placed.chosen)
    t.diagnostic(`${repeat!.promptTokens} prompt tokens, ${warm.hitTokens} hit on ${placed.chosen}`)
    assert.ok(warm.hitTokens >= 0.9 * repeat!.promptTokens, JSON.stringify(repeat))
    for (const other of repeat!.candidates) {
      if (other.endpoint !== placed.chosen) assert.equal(other.hitTokens, 0)
    }
    for (const front of fronts) front.release()
    await Promise.all([first, second])
  })
})
