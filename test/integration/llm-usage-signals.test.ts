import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { flattenChat } from '../../src/llm/chat-template.ts'
import { createLlmSignals, type LlmSignals } from '../../src/llm/llm-signals.ts'
import { createOutputLengthPredictor } from '../../src/llm/output-length-predictor.ts'
import { createPromptTokenCounter } from '../../src/llm/prompt-token-counter.ts'
import { createSystemClock } from '../../src/util/clock.ts'
import { type RunningAya, startAya, startSimGateway } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startUpstream } from '../helpers/upstreams.ts'

const SERVED = 'meta-llama/Llama-3.1-8B-Instruct'
const KEY = { model: SERVED, route: 'llm' }
const MAX_TOKENS = 6

/** Aya with an LLM route to a simulated engine, learning into `signals`. */
const startGateway = (t: import('node:test').TestContext, signals: LlmSignals) =>
  startSimGateway(
    t,
    { policy: 'aya', sim: { replicas: 1, profile: 'h100-llama3-8b', speedup: 20 } },
    { routeName: 'llm', deps: { llmSignals: signals } },
  )

// The simulated engine counts a word as a token: 9-letter words are 10 characters a token, far
// from the 4 an unknown model's estimate starts at.
const PROMPT = `${'abcdefghi '.repeat(1000)}end`

const chat = (aya: RunningAya, stream: boolean, includeUsage = true) =>
  request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: MAX_TOKENS,
      messages: [{ role: 'user', content: PROMPT }],
      ...(stream ? { stream: true } : {}),
      ...(stream && includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
  })

/** The usage an SSE body reports in its usage chunk. */
function streamedUsage(sse: string): { prompt_tokens: number; completion_tokens: number } {
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue
    const chunk = JSON.parse(line.slice(6)) as { usage?: { prompt_tokens: number } | null }
    if (chunk.usage) return chunk.usage as { prompt_tokens: number; completion_tokens: number }
  }
  assert.fail(`no usage chunk in ${sse.slice(0, 200)}`)
}

/**
 * The signals hold exactly what one response reporting `usage` teaches: the same as a fresh
 * counter and predictor fed that usage by hand, and not what fresh ones say.
 */
function assertLearned(
  signals: LlmSignals,
  usage: { prompt_tokens: number; completion_tokens: number },
) {
  assert.equal(usage.completion_tokens, MAX_TOKENS)
  const promptChars = flattenChat([{ role: 'user', content: PROMPT }]).length
  const tokens = createPromptTokenCounter()
  tokens.observe(SERVED, promptChars, usage.prompt_tokens)
  // Calibration: the model's characters per token moved from 4 toward the ~10 it reported.
  assert.equal(signals.tokens.charsPerToken(SERVED), tokens.charsPerToken(SERVED))
  assert.ok(signals.tokens.charsPerToken(SERVED) > 7, `${signals.tokens.charsPerToken(SERVED)}`)

  const outputs = createOutputLengthPredictor()
  const fresh = createOutputLengthPredictor()
  outputs.observe(KEY, usage.prompt_tokens, MAX_TOKENS, usage.completion_tokens)
  for (const cap of [MAX_TOKENS, 64, undefined]) {
    const learned = signals.outputs.predict(KEY, usage.prompt_tokens, cap)
    assert.deepEqual(learned, outputs.predict(KEY, usage.prompt_tokens, cap), `cap ${cap}`)
    if (cap === undefined) {
      assert.notDeepEqual(learned, fresh.predict(KEY, usage.prompt_tokens, cap), 'it learned')
    }
  }
}

/** Aya's models gateway for `llama` (served as SERVED) on one upstream, with its own signals. */
async function startSignalsGateway(t: TestContext, upstreamUrl: string) {
  const signals = createLlmSignals({ clock: createSystemClock() })
  const aya = await startAya(
    {
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { llama: { deployments: [{ upstream: 'pool', model: SERVED }] } },
      upstreams: { pool: { endpoints: [{ url: upstreamUrl }] } },
    },
    {},
    { llmSignals: signals },
  )
  t.after(() => aya.close())
  return { aya, signals }
}

describe('upstream usage reaches the LLM signals through a proxied response', () => {
  test('a complete JSON body', async (t) => {
    const signals = createLlmSignals({ clock: createSystemClock() })
    const aya = await startGateway(t, signals)
    assert.equal(signals.tokens.charsPerToken(SERVED), 4)
    assert.equal(signals.outputs.predict(KEY, 1000, MAX_TOKENS).basis, 'prior')

    const res = await chat(aya, false)
    assert.equal(res.statusCode, 200)
    const { usage } = (await res.body.json()) as {
      usage: { prompt_tokens: number; completion_tokens: number }
    }
    assert.ok(usage.prompt_tokens > 1000)
    await eventually(
      () => signals.tokens.trackedModels > 0,
      'the response reaching the LLM signals',
    )
    assertLearned(signals, usage)
  })

  test('a stream, from its usage chunk', async (t) => {
    const signals = createLlmSignals({ clock: createSystemClock() })
    const aya = await startGateway(t, signals)
    const res = await chat(aya, true)
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    const usage = streamedUsage(await res.body.text())
    await eventually(
      () => signals.tokens.trackedModels > 0,
      'the response reaching the LLM signals',
    )
    assertLearned(signals, usage)
  })

  test('a stream without usage teaches output length from its token events', async (t) => {
    const signals = createLlmSignals({ clock: createSystemClock() })
    const aya = await startGateway(t, signals)
    const before = signals.outputs.predict(KEY, 2000, undefined).mean
    const res = await chat(aya, true, false)
    assert.equal(res.statusCode, 200)
    assert.doesNotMatch(await res.body.text(), /"usage":\{/)
    // One output of 6 tokens pulls the uncapped mean down from the prior's.
    await eventually(
      () => signals.outputs.predict(KEY, 2000, undefined).mean < before,
      'the streamed output reaching the predictor',
    )
    // Without usage the prompt's count is never corrected.
    assert.equal(signals.tokens.trackedModels, 0)
  })
})

describe('usage an upstream misreports', () => {
  test('does not move the model’s characters per token: only real counts are learned', async (t) => {
    // Answered in order: an infinite prompt (`1e999`), a fractional one, a real prompt with a
    // negative cache read that would all but cancel it, then a real one.
    const usages = [
      '{"prompt_tokens":1e999,"completion_tokens":-5}',
      '{"prompt_tokens":0.001,"completion_tokens":1}',
      '{"input_tokens":150,"cache_read_input_tokens":-140,"output_tokens":1}',
      '{"prompt_tokens":150,"completion_tokens":1}',
    ]
    const upstream = await startUpstream((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(`{"choices":[{"message":{"content":"hi"}}],"usage":${usages.shift()}}`)
      })
    })
    t.after(() => upstream.close())
    const { aya, signals } = await startSignalsGateway(t, upstream.url)
    const messages = [{ role: 'user', content: 'hello world '.repeat(50) }]
    for (let i = 0; i < 4; i++) {
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama', max_tokens: 5, messages }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.text()
    }
    const promptChars = flattenChat(messages).length
    const expected = createPromptTokenCounter()
    expected.observe(SERVED, promptChars, 150)
    expected.observe(SERVED, promptChars, 150)
    await eventually(
      () => signals.tokens.charsPerToken(SERVED) === expected.charsPerToken(SERVED),
      'the real counts alone learned',
    )
    assert.equal(signals.tokens.charsPerToken(SERVED), expected.charsPerToken(SERVED))
  })

  test('does not learn characters per token from a Responses turn whose earlier turns the upstream holds', async (t) => {
    // The engine counts the turns it stored (`previous_response_id`, a `conversation`, a stored
    // `prompt`) as input, though the router saw only the new one: a few words, 3,000 tokens.
    const upstream = await startUpstream((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(
          '{"object":"response","status":"completed","output":[],"usage":{"input_tokens":3000,"output_tokens":2}}',
        )
      })
    })
    t.after(() => upstream.close())
    const { aya, signals } = await startSignalsGateway(t, upstream.url)
    const turns = [
      { previous_response_id: 'resp_1', input: 'and then?' },
      { conversation: 'conv_1', input: 'and then?' },
      { conversation: { id: 'conv_1' }, input: 'and then?' },
      { prompt: { id: 'pmpt_1', variables: { city: 'Paris' } }, input: 'and then?' },
    ]
    for (const turn of turns) {
      const res = await request(`${aya.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama', ...turn }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.text()
    }
    // A turn the router sees whole still teaches the ratio.
    const whole = await request(`${aya.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'llama', input: 'hello world '.repeat(1000) }),
    })
    await whole.body.text()
    const expected = createPromptTokenCounter()
    expected.observe(
      SERVED,
      flattenChat([{ role: 'user', content: 'hello world '.repeat(1000) }]).length,
      3000,
    )
    await eventually(() => signals.tokens.trackedModels === 1, 'the whole turn learned')
    assert.equal(signals.tokens.charsPerToken(SERVED), expected.charsPerToken(SERVED))
  })
})

describe('tokenizers of configured models', () => {
  test('load when Aya starts, not on the first request', async (t) => {
    const loads: string[] = []
    const tokens = createPromptTokenCounter(
      {},
      {
        loadEncoding: (encoding) => {
          loads.push(encoding)
          return { countTokens: (text) => text.length }
        },
      },
    )
    const signals = { ...createLlmSignals({ clock: createSystemClock() }), tokens }
    const aya = await startAya(
      {
        routes: [{ name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models' }],
        upstreams: { openai: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
        models: {
          'gpt-4o': { deployments: [{ upstream: 'openai' }] },
          // Served under an older family's name: its vocabulary, not the registry name's.
          legacy: { deployments: [{ upstream: 'openai', model: 'gpt-4' }] },
          llama: { deployments: [{ upstream: 'openai' }] },
        },
      },
      {},
      { llmSignals: signals },
    )
    t.after(() => aya.close())
    assert.deepEqual(loads.sort(), ['cl100k_base', 'o200k_base'])
  })
})

describe('endpoint capacity', () => {
  test('is learned from real streamed responses and exported, away from the priors toward the engine', async (t) => {
    const aya = await startSimGateway(t, {
      policy: 'aya',
      sim: { replicas: 1, profile: 'h100-llama3-8b', speedup: 1 },
    })
    const scrape = async () => (await request(`${aya.adminUrl}/metrics`)).body.text()
    const gauge = (text: string, name: string) => {
      const match = new RegExp(`^${name}\\{upstream="fleet",endpoint="[^"]+"\\} (\\S+)$`, 'm').exec(
        text,
      )
      return match ? Number(match[1]) : undefined
    }
    // Nothing learned yet: the priors are not exported as if measured.
    assert.equal(gauge(await scrape(), 'aya_endpoint_prefill_tokens_per_second'), undefined)
    for (let i = 0; i < 6; i++) {
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'llama',
          max_tokens: 40,
          stream: true,
          // The simulated engine counts a word as a token: ~8,000 uncached tokens each.
          messages: [{ role: 'user', content: `${i} ${Math.random()} ${'lorem '.repeat(8000)}` }],
        }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.text()
    }
    const text = await scrape()
    // The simulated H100 prefills ~30k tokens/s and steps in ~8 ms; the priors are 10k and 25 ms.
    const prefill = gauge(text, 'aya_endpoint_prefill_tokens_per_second')
    assert.ok(prefill !== undefined && prefill > 15_000 && prefill < 60_000, `prefill ${prefill}`)
    const stepSeconds = gauge(text, 'aya_endpoint_decode_step_seconds')
    assert.ok(
      stepSeconds !== undefined && stepSeconds > 0.004 && stepSeconds < 0.02,
      `decode step ${stepSeconds}`,
    )
  })
})
