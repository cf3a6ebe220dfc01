import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { ServerResponse } from 'node:http'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { CHANNELS } from '../../src/observability/channels.ts'
import type { RequestContext } from '../../src/proxy/request-context.ts'
import { adminMetrics, metricSample, type RunningAya, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startUpstream } from '../helpers/upstreams.ts'

const CODE = 'LB_ERR_UPSTREAM_STREAM_ERROR'

const sse = (payload: unknown, event?: string) =>
  `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(payload)}\n\n`

/** One API's stream that fails in band: its path, a request body, and what the engine sends. */
interface FailingStream {
  readonly name: string
  readonly path: string
  readonly body: Record<string, unknown>
  /** Sent one by one, with a pause between: the error event comes mid-stream. */
  readonly parts: readonly string[]
  readonly message: string
}

const chatChunk = (content: string) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta: { content } }],
})

const FAILING_STREAMS: readonly FailingStream[] = [
  {
    name: 'OpenAI chat chunk {"error": ...}',
    path: '/v1/chat/completions',
    body: { model: 'llama', stream: true, messages: [{ role: 'user', content: 'x' }] },
    parts: [
      sse(chatChunk('Hel')),
      sse(chatChunk('lo')),
      sse({ error: { message: 'CUDA out of memory', type: 'InternalServerError', code: 500 } }),
      'data: [DONE]\n\n',
    ],
    message: 'CUDA out of memory',
  },
  {
    name: 'vLLM completions chunk {"error": ...}',
    path: '/v1/completions',
    body: { model: 'llama', stream: true, prompt: 'x' },
    parts: [
      sse({ id: 'c2', object: 'text_completion', choices: [{ index: 0, text: 'Once' }] }),
      sse({ error: { object: 'error', message: 'engine dead', type: 'EngineDeadError' } }),
      'data: [DONE]\n\n',
    ],
    message: 'engine dead',
  },
  {
    name: 'Anthropic event: error',
    path: '/v1/messages',
    body: {
      model: 'llama',
      stream: true,
      max_tokens: 8,
      messages: [{ role: 'user', content: 'x' }],
    },
    parts: [
      sse(
        { type: 'message_start', message: { usage: { input_tokens: 3, output_tokens: 1 } } },
        'message_start',
      ),
      sse(
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
        'content_block_delta',
      ),
      sse({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error'),
    ],
    message: 'Overloaded',
  },
  {
    name: 'Responses API response.failed',
    path: '/v1/responses',
    body: { model: 'llama', stream: true, input: 'x' },
    parts: [
      sse({ type: 'response.output_text.delta', delta: 'Hi', sequence_number: 1 }),
      sse({
        type: 'response.failed',
        sequence_number: 2,
        response: {
          id: 'r1',
          status: 'failed',
          error: { code: 'server_error', message: 'the model crashed' },
        },
      }),
    ],
    message: 'the model crashed',
  },
  {
    name: 'Responses API error',
    path: '/v1/responses',
    body: { model: 'llama', stream: true, input: 'x' },
    parts: [
      sse({ type: 'response.output_text.delta', delta: 'Hi', sequence_number: 1 }),
      sse({ type: 'error', code: 'server_error', message: 'rate of failure', sequence_number: 2 }),
    ],
    message: 'rate of failure',
  },
]

/** Writes `parts` as an event stream, a few milliseconds apart, then ends it. */
function streamParts(res: ServerResponse, parts: readonly string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  let i = 0
  const next = () => {
    if (i === parts.length) return res.end()
    res.write(parts[i++])
    setTimeout(next, 5)
  }
  next()
}

/**
 * Aya with one LLM route, `llm`, to one raw upstream that answers each request with the reply
 * `reply` gives for its path; the endpoint of each finished request is kept, by request id.
 */
async function startGateway(
  t: import('node:test').TestContext,
  reply: (path: string, res: ServerResponse) => void,
) {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    req.on('end', () => reply(req.url ?? '/', res))
  })
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: { llama: { deployments: [{ upstream: 'pool' }] } },
    upstreams: { pool: { endpoints: [{ url: upstream.url }], engineMetrics: false } },
  })
  t.after(() => aya.close())
  // The endpoint's own failure count, as each request left it: read where metrics and logs read.
  const failuresAfter = new Map<string, number>()
  const onDone = (message: unknown) => {
    const ctx = message as RequestContext
    if (ctx.endpoint) failuresAfter.set(ctx.id, ctx.endpoint.stats.failures)
  }
  subscribe(CHANNELS.requestDone, onDone)
  t.after(() => unsubscribe(CHANNELS.requestDone, onDone))
  return { aya, failuresAfter }
}

const post = (url: string, body: unknown) =>
  request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

const accessLines = (aya: RunningAya) => aya.logs.filter((line) => line.msg === 'access')

const streamErrors = async (aya: RunningAya) =>
  metricSample(await adminMetrics(aya), 'aya_errors_total', `code="${CODE}",route="llm"`) ?? 0

describe('errors inside a relayed LLM stream', () => {
  for (const stream of FAILING_STREAMS) {
    test(`passes a stream that fails in band (${stream.name}) through unchanged, and logs and counts it as ${CODE} with the engine's message`, async (t) => {
      const { aya, failuresAfter } = await startGateway(t, (_path, res) =>
        streamParts(res, stream.parts),
      )
      const res = await post(`${aya.url}${stream.path}`, stream.body)
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), stream.parts.join(''))

      await eventually(() => accessLines(aya).length === 1, 'the access line')
      const line = accessLines(aya)[0]!
      assert.equal(line.status, 200)
      assert.equal(line.error, CODE)
      assert.equal(line.errorDetail, stream.message)
      assert.equal(await streamErrors(aya), 1)
      assert.equal(failuresAfter.get(line.requestId as string), 1, 'the endpoint counts a failure')
    })
  }

  test('bounds the logged message to one line of 200 characters, and counts each failed stream', async (t) => {
    const long = `first\nline ${'x'.repeat(1000)}`
    const parts = [sse(chatChunk('a')), sse({ error: { message: long } }), 'data: [DONE]\n\n']
    const { aya, failuresAfter } = await startGateway(t, (_path, res) => streamParts(res, parts))
    const body = { model: 'llama', stream: true, messages: [{ role: 'user', content: 'x' }] }
    for (let i = 0; i < 2; i++) {
      const res = await post(`${aya.url}/v1/chat/completions`, body)
      assert.equal(await res.body.text(), parts.join(''))
    }
    await eventually(() => accessLines(aya).length === 2, 'two access lines')
    for (const line of accessLines(aya)) {
      const detail = line.errorDetail as string
      assert.equal(detail.length, 200)
      assert.ok(detail.startsWith('first line xxx'), detail)
      assert.ok(detail.endsWith('…'), detail)
    }
    assert.equal(await streamErrors(aya), 2)
    assert.deepEqual(
      accessLines(aya).map((line) => failuresAfter.get(line.requestId as string)),
      [1, 2],
    )
  })

  test('does not flag a normal stream whose generated text says "error", even as an error event’s JSON', async (t) => {
    const parts = [
      sse(chatChunk('"error"')),
      sse(chatChunk('{"error": {"message": "not really"}}')),
      sse({ id: 'c1', object: 'chat.completion.chunk', choices: [], error: null }),
      'data: [DONE]\n\n',
    ]
    const responsesParts = [
      sse({ type: 'response.output_text.delta', delta: '{"type":"error"}', sequence_number: 1 }),
      sse({ type: 'response.completed', response: { id: 'r1', status: 'completed', error: null } }),
    ]
    const anthropicParts = [
      sse(
        {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: 'event: error\ndata: {"type":"error"}' },
        },
        'content_block_delta',
      ),
      sse({ type: 'message_stop' }, 'message_stop'),
    ]
    const { aya, failuresAfter } = await startGateway(t, (path, res) =>
      streamParts(
        res,
        path === '/v1/responses'
          ? responsesParts
          : path === '/v1/messages'
            ? anthropicParts
            : parts,
      ),
    )
    const chat = await post(`${aya.url}/v1/chat/completions`, {
      model: 'llama',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    })
    assert.equal(await chat.body.text(), parts.join(''))
    const responses = await post(`${aya.url}/v1/responses`, {
      model: 'llama',
      stream: true,
      input: 'x',
    })
    assert.equal(await responses.body.text(), responsesParts.join(''))
    const messages = await post(`${aya.url}/v1/messages`, {
      model: 'llama',
      stream: true,
      max_tokens: 8,
      messages: [{ role: 'user', content: 'x' }],
    })
    assert.equal(await messages.body.text(), anthropicParts.join(''))

    await eventually(() => accessLines(aya).length === 3, 'three access lines')
    for (const line of accessLines(aya)) {
      assert.equal(line.status, 200)
      assert.equal(line.error, undefined, String(line.url))
      assert.equal(line.errorDetail, undefined, String(line.url))
      assert.equal(failuresAfter.get(line.requestId as string), 0, String(line.url))
    }
    assert.equal(await streamErrors(aya), 0)
  })

  test('does not flag a JSON 200 that is not streamed, whatever its text holds', async (t) => {
    const body = JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'data: {"error": {"message": "quoted"}}\n\n' },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 9 },
    })
    const { aya, failuresAfter } = await startGateway(t, (_path, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(body)
    })
    const res = await post(`${aya.url}/v1/chat/completions`, {
      model: 'llama',
      messages: [{ role: 'user', content: 'x' }],
    })
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), body)
    await eventually(() => accessLines(aya).length === 1, 'the access line')
    const line = accessLines(aya)[0]!
    assert.equal(line.error, undefined)
    assert.equal(line.errorDetail, undefined)
    assert.equal(failuresAfter.get(line.requestId as string), 0)
    assert.equal(await streamErrors(aya), 0)
  })
})
