import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { LlmRequest } from '../../../src/llm/llm-request.ts'
import { createLlmSignals } from '../../../src/llm/llm-signals.ts'
import { createResponseTap, type TapResult } from '../../../src/llm/response-tap.ts'
import { tokenIdsText } from '../../../src/llm/token-ids-text.ts'
import { Endpoint } from '../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const llm = (stream: boolean): LlmRequest => ({
  api: 'openai.chat',
  model: 'm',
  servedModel: 'm',
  stream,
  maxTokens: 300,
  promptText: 'x'.repeat(8000),
  promptTokens: 2000,
  sessionKey: undefined,
  routeKey: 'r',
})

function setup() {
  const clock = createManualClock()
  const signals = createLlmSignals({ clock })
  const endpoint = new Endpoint(
    { id: 'a', url: 'http://a', origin: 'http://a', weight: 1 },
    { clock },
  )
  // A 2,000-token prompt prefilled in 100 ms, then 300 tokens at 20 ms each: 6.1 s in all.
  const observe = (
    stream: boolean,
    tap: TapResult,
    request: Partial<LlmRequest> = {},
    completed = true,
  ) =>
    signals.observe({
      endpoint,
      llm: { ...llm(stream), ...request },
      ok: true,
      completed,
      sentAtMs: 0,
      prefillAheadTokens: 0,
      prefillTokens: 2000,
      tap,
    })
  return { signals, observe }
}

const usage = { promptTokens: 2000, completionTokens: 300 }

describe('llm signals', () => {
  test('a streamed first token is a TTFT sample for capacity learning', () => {
    const { signals, observe } = setup()
    observe(true, { firstTokenAtMs: 100, lastTokenAtMs: 6080, contentEvents: 300, usage })
    assert.equal(signals.capacity.get('a').samples, 1)
  })

  test('a stream without usage teaches output length from its event count, once it ran to its end', () => {
    const { signals, observe } = setup()
    const key = { model: 'm', route: 'r' }
    const before = signals.outputs.predict(key, 2000, 300).mean
    // Cut short by the client: its event count is no output length.
    for (let i = 0; i < 50; i++) {
      observe(
        true,
        { firstTokenAtMs: 100, lastTokenAtMs: 200, contentEvents: 5, usage: undefined },
        {},
        false,
      )
    }
    assert.equal(signals.outputs.predict(key, 2000, 300).mean, before)
    for (let i = 0; i < 50; i++) {
      observe(true, {
        firstTokenAtMs: 100,
        lastTokenAtMs: 2080,
        contentEvents: 100,
        usage: undefined,
      })
    }
    const learned = signals.outputs.predict(key, 2000, 300).mean
    assert.ok(Math.abs(learned - 100) < 15, `predicted ${learned} after 50 outputs of 100 tokens`)
  })

  test('a response cut short or failed in band teaches no output length, though it has usage', () => {
    const { signals, observe } = setup()
    const key = { model: 'm', route: 'r' }
    const before = signals.outputs.predict(key, 2000, 300).mean
    // Anthropic's usage at message_start counts 1 output token before anything is generated.
    const early = { promptTokens: 2000, completionTokens: 1 }
    for (let i = 0; i < 50; i++) {
      observe(
        true,
        { firstTokenAtMs: 100, lastTokenAtMs: 100, contentEvents: 1, usage: early },
        {},
        false,
      )
      observe(true, {
        firstTokenAtMs: 100,
        lastTokenAtMs: 100,
        contentEvents: 1,
        usage: early,
        sawError: true,
      })
    }
    assert.equal(signals.outputs.predict(key, 2000, 300).mean, before)
  })

  test('learns the length of one sequence from a response that generated several', () => {
    const { signals, observe } = setup()
    const key = { model: 'm', route: 'r' }
    const tap = { firstTokenAtMs: 100, lastTokenAtMs: 2000, contentEvents: 300 }
    for (let i = 0; i < 50; i++) {
      observe(
        true,
        { ...tap, usage: { promptTokens: 2000, completionTokens: 300 } },
        { sequences: 3 },
      )
      observe(true, { ...tap, usage: undefined }, { sequences: 3 })
    }
    const learned = signals.outputs.predict(key, 2000, 300).mean
    assert.ok(Math.abs(learned - 100) < 15, `predicted ${learned} per sequence`)
  })

  test('learns no more output than the response’s body could have carried', () => {
    const { signals, observe } = setup()
    const key = { model: 'm', route: 'r' }
    // A rogue claims 5,000,000 tokens in a 600-byte stream of two deltas, with no cap to bound it.
    const claim = { promptTokens: 2000, completionTokens: 5_000_000 }
    const tap = { firstTokenAtMs: 100, lastTokenAtMs: 101, contentEvents: 2 }
    for (let i = 0; i < 50; i++) {
      observe(true, { ...tap, usage: claim, bodyBytes: 600 }, { maxTokens: undefined })
    }
    const learned = signals.outputs.predict(key, 2000, undefined).mean
    assert.ok(learned > 300 && learned <= 700, `predicted ${learned}`)
    // Where no tap counted the body (the virtual-time bench), the claim stands.
    const unbounded = setup()
    for (let i = 0; i < 50; i++) {
      unbounded.observe(true, { ...tap, usage: claim }, { maxTokens: undefined })
    }
    const believed = unbounded.signals.outputs.predict(key, 2000, undefined).mean
    assert.ok(believed > 50_000, `predicted ${believed}`)
  })

  test('learns output length under the prompt length it predicts with, not the engine’s count', () => {
    const { signals, observe } = setup()
    const key = { model: 'm', route: 'r' }
    // The engine counts its chat template too: 2,000 estimated tokens arrive as 5,000, a
    // different length bucket. Predictions are asked with the estimate, so learning is filed there.
    for (let i = 0; i < 50; i++) {
      observe(true, {
        firstTokenAtMs: 100,
        lastTokenAtMs: 300,
        contentEvents: 10,
        usage: { promptTokens: 5000, completionTokens: 10 },
      })
    }
    const prediction = signals.outputs.predict(key, 2000, 300)
    assert.equal(prediction.basis, 'cell')
    assert.ok(Math.abs(prediction.mean - 10) < 3, `predicted ${prediction.mean}`)
  })

  test('a stream the client pushed back on teaches no decode step, only its prefill rate', () => {
    const clock = createManualClock()
    const signals = createLlmSignals({ clock })
    const endpoint = new Endpoint(
      { id: 'a', url: 'http://a', origin: 'http://a', weight: 1 },
      { clock },
    )
    const observe = (clientStalled: boolean, lastTokenAtMs: number) =>
      signals.observe({
        endpoint,
        llm: llm(true),
        ok: true,
        completed: true,
        clientStalled,
        sentAtMs: 0,
        prefillAheadTokens: 0,
        prefillTokens: 2000,
        tap: { firstTokenAtMs: 100, lastTokenAtMs, contentEvents: 300, usage },
      })
    for (let i = 0; i < 20; i++) observe(false, 100 + 299 * 5)
    const before = signals.capacity.get('a').decodeStepMs
    // The client read slowly: 300 tokens over 30 s, at its pace, not the engine's 5 ms.
    for (let i = 0; i < 20; i++) observe(true, 30_100)
    assert.equal(signals.capacity.get('a').decodeStepMs, before)
    assert.equal(signals.capacity.get('a').samples, 40)
  })

  test('times a decode step by one sequence’s tokens when several stream interleaved', () => {
    const { signals, observe } = setup()
    // Three sequences of 100 tokens over 1,980 ms: 20 ms a step, though 300 events passed.
    const tap = { firstTokenAtMs: 100, lastTokenAtMs: 2080, contentEvents: 300 }
    for (let i = 0; i < 50; i++) observe(true, { ...tap, usage }, { sequences: 3 })
    const stepMs = signals.capacity.get('a').decodeStepMs
    assert.ok(Math.abs(stepMs - 20) < 1, `step ${stepMs} ms`)
  })

  test('a response from a server its endpoint id no longer names teaches no rates', () => {
    const { signals } = setup()
    const endpoint = new Endpoint(
      { id: 'a', url: 'http://old', origin: 'http://old', weight: 1 },
      { clock: createManualClock() },
    )
    signals.observe({
      endpoint,
      llm: llm(true),
      ok: true,
      completed: true,
      endpointCurrent: false,
      sentAtMs: 0,
      prefillAheadTokens: 0,
      prefillTokens: 2000,
      tap: { firstTokenAtMs: 100, lastTokenAtMs: 6080, contentEvents: 300, usage },
    })
    assert.equal(signals.capacity.get('a').samples, 0)
    // What it says of the model still counts.
    assert.equal(signals.tokens.trackedModels, 1)
  })

  test('a complete body, which comes after the whole generation, is no TTFT sample', () => {
    const { signals, observe } = setup()
    const tap = createResponseTap('openai.chat', false)
    tap.onChunk(
      Buffer.from(
        '{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":2000,"completion_tokens":300}}',
      ),
      6100,
    )
    observe(false, tap.finish())
    assert.equal(signals.capacity.get('a').samples, 0)
    assert.equal(signals.capacity.get('a').prefillTokensPerSec, 10_000)
  })

  test('a stream that arrived all at once (buffered on the way) is no TTFT sample', () => {
    const { signals, observe } = setup()
    observe(true, { firstTokenAtMs: 6100, lastTokenAtMs: 6100, contentEvents: 300, usage })
    assert.equal(signals.capacity.get('a').samples, 0)
  })

  test('a prompt sent as token ids, or with images, teaches no characters-per-token ratio', () => {
    const ids = Array.from({ length: 1_000 }, (_, i) => i)
    for (const [what, request, promptTokens] of [
      // Its text is the ids' fixed-width form, 4 characters each: no measure of the model's prose.
      [
        'token ids',
        { promptText: tokenIdsText(ids), promptTokens: 1_000, promptTokensExact: true },
        1_000,
      ],
      // 60 characters of question and a marker, 1,300 tokens: almost all of them the image's.
      ['an image', { promptText: 'q'.repeat(60), promptTokens: 1_015, mediaParts: 1 }, 1_300],
    ] as const) {
      const { signals, observe } = setup()
      // A model whose prose runs 2 characters a token.
      for (let i = 0; i < 50; i++) signals.tokens.observe('m', 2_000, 1_000)
      const learned = signals.tokens.charsPerToken('m')
      for (let i = 0; i < 200; i++) {
        observe(
          false,
          {
            firstTokenAtMs: 10,
            lastTokenAtMs: 10,
            contentEvents: 1,
            usage: { promptTokens, completionTokens: 5 },
          },
          request,
        )
      }
      assert.equal(signals.tokens.charsPerToken('m'), learned, what)
    }
  })

  test("predicts a request's work as its prompt plus its predicted output, not the cap", () => {
    const signals = createLlmSignals({ clock: createManualClock() })
    const key = { model: 'm', route: 'r' }
    for (let i = 0; i < 500; i++) signals.outputs.observe(key, 2000, 300, 40)
    const cost = signals.predictedCost(llm(true))
    assert.ok(cost > 2030 && cost < 2050, `predicted ${cost} tokens`)
    // Three sequences generate three outputs.
    const three = signals.predictedCost({ ...llm(true), sequences: 3 })
    assert.ok(three > 2090 && three < 2150, `predicted ${three} tokens for n = 3`)
    // Embeddings generate nothing: their work is the prompt.
    assert.equal(signals.predictedCost({ ...llm(false), api: 'openai.embeddings' }), 2000)
  })
})
