import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { adminMetrics, metricSample, type RunningAya, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startUpstream } from '../helpers/upstreams.ts'

/** The engine holds the first token back at least this long after the request reaches it. */
const FIRST_TOKEN_DELAY_MS = 150
/** and then sends the tokens this far apart. */
const TOKEN_GAP_MS = 20
const TOKENS = ['Hel', 'lo', ' there']
const STREAM_USAGE = { prompt_tokens: 11, completion_tokens: TOKENS.length, total_tokens: 14 }
const BODY_USAGE = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
const chunk = (delta: Record<string, unknown>) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta }],
})

/** Real time passes until `ms` after `from` (performance.now(), the clock Aya times requests by). */
async function until(from: number, ms: number): Promise<void> {
  while (performance.now() - from < ms) {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(1, ms - (performance.now() - from))),
    )
  }
}

/**
 * An OpenAI-style engine of known timing and usage. A streamed request gets its head and a role
 * prelude at once, the first token `FIRST_TOKEN_DELAY_MS` after it arrived, the rest
 * `TOKEN_GAP_MS` apart, then a usage chunk; `"user": "fail"` gets the head and prelude and then a
 * reset, before any token. A plain request gets one body with `BODY_USAGE`.
 */
function engine(req: IncomingMessage, res: ServerResponse): void {
  const arrivedAt = performance.now()
  let raw = ''
  req.on('data', (data: Buffer) => {
    raw += data.toString()
  })
  req.on('end', async () => {
    const body = JSON.parse(raw) as { stream?: boolean; user?: string }
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          id: 'c0',
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there' } }],
          usage: BODY_USAGE,
        }),
      )
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(sse(chunk({ role: 'assistant', content: '' })))
    if (body.user === 'fail') {
      await until(arrivedAt, 30)
      res.destroy()
      return
    }
    await until(arrivedAt, FIRST_TOKEN_DELAY_MS)
    for (const [i, token] of TOKENS.entries()) {
      if (i > 0) await until(performance.now(), TOKEN_GAP_MS)
      res.write(sse(chunk({ content: token })))
    }
    res.write(sse({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: STREAM_USAGE }))
    res.end('data: [DONE]\n\n')
  })
}

/** Aya with the LLM route `chat` and the wildcard model entry `llama-*`, served by `engine`. */
async function startGateway(t: { after(fn: () => Promise<void>): void }): Promise<RunningAya> {
  const upstream = await startUpstream(engine)
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ name: 'chat', match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: { 'llama-*': { deployments: [{ upstream: 'u' }] } },
    upstreams: { u: { endpoints: [{ url: upstream.url }], engineMetrics: false } },
  })
  t.after(() => aya.close())
  return aya
}

let nextId = 0

/** Sends a chat request under a fresh request id; the status, or 0 when it failed before a head. */
async function chat(
  aya: RunningAya,
  body: Record<string, unknown>,
): Promise<{ status: number; requestId: string }> {
  const requestId = `llm-obs-${++nextId}`
  try {
    const res = await request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], ...body }),
    })
    // A stream cut short fails while its body is read.
    await res.body.text().catch(() => {})
    return { status: res.statusCode, requestId }
  } catch {
    return { status: 0, requestId }
  }
}

/** The access line of one request, once written. */
async function accessLine(aya: RunningAya, requestId: string): Promise<Record<string, unknown>> {
  const find = () => aya.logs.find((l) => l.msg === 'access' && l.requestId === requestId)
  await eventually(() => find() !== undefined, `the access line of ${requestId}`)
  return find()!
}

const LABELS = 'route="chat",model="llama-*"'
const sample = (text: string, name: string, labels = LABELS) =>
  metricSample(text, name, labels) ?? 0

describe('LLM time to first token and token usage', () => {
  test('a streamed request logs its TTFT from arrival and the usage the engine reported, and moves the TTFT histogram and token counters by exactly that', async (t) => {
    const aya = await startGateway(t)
    const { status, requestId } = await chat(aya, {
      model: 'llama-3',
      stream: true,
      stream_options: { include_usage: true },
    })
    assert.equal(status, 200)
    const line = await accessLine(aya, requestId)
    const ttftMs = line.ttftMs as number
    assert.ok(ttftMs >= FIRST_TOKEN_DELAY_MS, `ttftMs ${ttftMs} is at least the engine's delay`)
    assert.ok(ttftMs < FIRST_TOKEN_DELAY_MS + 2_000, `ttftMs ${ttftMs} is reasonable`)
    assert.ok(ttftMs <= (line.durationMs as number), 'the first token came before the end')
    assert.equal(line.promptTokens, STREAM_USAGE.prompt_tokens)
    assert.equal(line.completionTokens, STREAM_USAGE.completion_tokens)
    assert.equal(line.model, 'llama-3', 'the log keeps the name the client asked for')

    const text = await adminMetrics(aya)
    assert.equal(sample(text, 'aya_llm_ttft_seconds_count'), 1)
    const sum = sample(text, 'aya_llm_ttft_seconds_sum')
    assert.ok(Math.abs(sum - ttftMs / 1000) < 1e-6, `the histogram got the logged TTFT (${sum})`)
    assert.equal(sample(text, 'aya_llm_ttft_seconds_bucket', `le="0.1",${LABELS}`), 0)
    assert.equal(sample(text, 'aya_llm_ttft_seconds_bucket', `le="+Inf",${LABELS}`), 1)
    assert.equal(
      sample(text, 'aya_llm_tokens_total', `${LABELS},kind="prompt"`),
      STREAM_USAGE.prompt_tokens,
    )
    assert.equal(
      sample(text, 'aya_llm_tokens_total', `${LABELS},kind="completion"`),
      STREAM_USAGE.completion_tokens,
    )
    // Three tokens, two gaps of at least TOKEN_GAP_MS.
    assert.equal(sample(text, 'aya_llm_time_per_output_token_seconds_count'), 1)
    const perToken = sample(text, 'aya_llm_time_per_output_token_seconds_sum')
    assert.ok(perToken >= TOKEN_GAP_MS / 1000 - 0.001, `time per output token ${perToken}`)
  })

  test('a request that is not streamed logs and counts its tokens but has no TTFT', async (t) => {
    const aya = await startGateway(t)
    const { status, requestId } = await chat(aya, { model: 'llama-3' })
    assert.equal(status, 200)
    const line = await accessLine(aya, requestId)
    assert.equal('ttftMs' in line, false)
    assert.equal(line.promptTokens, BODY_USAGE.prompt_tokens)
    assert.equal(line.completionTokens, BODY_USAGE.completion_tokens)
    const text = await adminMetrics(aya)
    assert.equal(metricSample(text, 'aya_llm_ttft_seconds_count', LABELS), undefined)
    assert.equal(
      metricSample(text, 'aya_llm_time_per_output_token_seconds_count', LABELS),
      undefined,
    )
    assert.equal(
      sample(text, 'aya_llm_tokens_total', `${LABELS},kind="prompt"`),
      BODY_USAGE.prompt_tokens,
    )
    assert.equal(
      sample(text, 'aya_llm_tokens_total', `${LABELS},kind="completion"`),
      BODY_USAGE.completion_tokens,
    )
  })

  test('a stream that fails before its first token logs no TTFT and observes none', async (t) => {
    const aya = await startGateway(t)
    const { requestId } = await chat(aya, { model: 'llama-3', stream: true, user: 'fail' })
    const line = await accessLine(aya, requestId)
    assert.notEqual(line.error, undefined, 'the failure is logged')
    assert.equal('ttftMs' in line, false)
    assert.equal('promptTokens' in line, false)
    const text = await adminMetrics(aya)
    assert.equal(metricSample(text, 'aya_llm_ttft_seconds_count', LABELS), undefined)
  })

  test('a model the registry does not know is logged as asked, with its 404', async (t) => {
    const aya = await startGateway(t)
    const { status, requestId } = await chat(aya, { model: 'gpt-unknown' })
    assert.equal(status, 404)
    const line = await accessLine(aya, requestId)
    assert.equal(line.model, 'gpt-unknown')
    assert.equal(line.error, 'LB_ERR_UNKNOWN_MODEL')
  })

  test('a wildcard model requested under many names is one model label value', async (t) => {
    const aya = await startGateway(t)
    const names = ['llama-a', 'llama-b', 'llama-c', 'llama-3.1-8b-instruct']
    for (const model of names) {
      const { status } = await chat(aya, {
        model,
        stream: true,
        stream_options: { include_usage: true },
      })
      assert.equal(status, 200)
    }
    await eventually(
      () => aya.logs.filter((l) => l.msg === 'access').length === names.length,
      'every access line',
    )
    const text = await adminMetrics(aya)
    const models = new Set(
      [...text.matchAll(/^aya_llm_[a-z_]+\{[^}]*model="([^"]*)"/gm)].map((m) => m[1]),
    )
    assert.deepEqual([...models], ['llama-*'])
    assert.equal(sample(text, 'aya_llm_ttft_seconds_count'), names.length)
    assert.equal(
      sample(text, 'aya_llm_tokens_total', `${LABELS},kind="completion"`),
      names.length * STREAM_USAGE.completion_tokens,
    )
  })
})

describe('token usage a model writes into its own output', () => {
  test('is not counted: an Anthropic tool call whose input holds a usage object logs and counts the response’s own usage', async (t) => {
    const usage = { input_tokens: 12, output_tokens: 3 }
    const upstream = await startUpstream((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: 'claude-x',
            // Generated by the model, as the prompt asked: it precedes the response's usage.
            content: [
              {
                type: 'tool_use',
                id: 'toolu_1',
                name: 'report',
                input: { usage: { input_tokens: 5, cache_read_input_tokens: 99_999_999 } },
              },
            ],
            stop_reason: 'tool_use',
            stop_sequence: null,
            usage,
          }),
        )
      })
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ name: 'chat', match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { 'claude-*': { deployments: [{ upstream: 'u' }] } },
      upstreams: { u: { endpoints: [{ url: upstream.url }], engineMetrics: false } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'tool-usage' },
      body: JSON.stringify({
        model: 'claude-x',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'call report' }],
      }),
    })
    assert.equal(res.statusCode, 200)
    await res.body.text()
    const line = await accessLine(aya, 'tool-usage')
    assert.equal(line.promptTokens, usage.input_tokens)
    assert.equal(line.completionTokens, usage.output_tokens)
    const labels = 'route="chat",model="claude-*"'
    const text = await adminMetrics(aya)
    assert.equal(metricSample(text, 'aya_llm_tokens_total', `${labels},kind="prompt"`), 12)
  })
})
