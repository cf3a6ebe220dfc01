import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, test } from 'node:test'
import { createGzip, gzipSync } from 'node:zlib'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { request } from 'undici'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { adminMetrics, metricSample, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { compressibleText, openRawClient, postGzipAndHangUp } from '../helpers/raw-client.ts'
import { closedPort, startUpstream } from '../helpers/upstreams.ts'

interface Received {
  readonly path: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** An upstream that records each request's exact bytes and answers with a minimal valid body. */
async function startRecordingLlm(t: import('node:test').TestContext) {
  const received: Received[] = []
  const upstream = await startUpstream((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        req.url === '/v1/messages/count_tokens'
          ? JSON.stringify({ input_tokens: 12 })
          : req.url?.startsWith('/v1/messages')
            ? JSON.stringify({
                id: 'msg_1',
                type: 'message',
                role: 'assistant',
                model: 'm',
                content: [{ type: 'text', text: 'hi' }],
                stop_reason: 'end_turn',
                stop_sequence: null,
                usage: { input_tokens: 3, output_tokens: 1 },
              })
            : JSON.stringify({ id: 'x', object: 'response', output: [], status: 'completed' }),
      )
    })
  })
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: {
      'llama-3.1-8b': {
        aliases: ['llama'],
        deployments: [{ upstream: 'pool', model: 'meta-llama/Llama-3.1-8B-Instruct' }],
      },
      'claude-*': { aliases: ['claude'], deployments: [{ upstream: 'pool' }] },
    },
    upstreams: { pool: { endpoints: [{ url: upstream.url }] } },
  })
  t.after(() => aya.close())
  return { aya, received }
}

const post = (url: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })

/** Aya with one model, `llama`, on one upstream served by `handler`. */
async function startOneUpstreamGateway(
  t: import('node:test').TestContext,
  handler: Parameters<typeof startUpstream>[0],
  options: {
    readonly upstream?: Record<string, unknown>
    readonly deps?: Parameters<typeof startAya>[2]
  } = {},
) {
  const upstream = await startUpstream(handler)
  t.after(() => upstream.close())
  const aya = await startAya(
    {
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { llama: { deployments: [{ upstream: 'pool' }] } },
      upstreams: { pool: { endpoints: [{ url: upstream.url }], ...options.upstream } },
    },
    {},
    options.deps,
  )
  t.after(() => aya.close())
  return aya
}

/** A chat request for `llama`, streamed or not. */
const askLlama = (url: string, stream: boolean) =>
  post(
    `${url}/v1/chat/completions`,
    JSON.stringify({ model: 'llama', stream, messages: [{ role: 'user', content: 'x' }] }),
  )

/** The one endpoint's router-side pending prefill, from Aya's metrics. */
async function pendingPrefillTokens(adminUrl: string): Promise<number> {
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  const line = metrics.split('\n').find((l) => l.startsWith('aya_endpoint_pending_prefill_tokens{'))
  return Number(line?.split(' ').at(-1))
}

describe('models gateway on the wire', () => {
  test('rewrites only the model value, forwarding every other byte as sent', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const sent =
      '{"seed": 12345678901234567890, "model":"llama" ,"temperature":1e400,' +
      '"messages":[{"role":"user","content":"say \\"model\\"","model":"x"}]}'
    const res = await post(`${aya.url}/v1/chat/completions`, sent)
    await res.body.text()
    assert.equal(res.statusCode, 200)
    const expected = sent.replace('"model":"llama"', '"model":"meta-llama/Llama-3.1-8B-Instruct"')
    assert.equal(received[0]?.body.toString('utf8'), expected)
    assert.equal(received[0]?.headers['content-length'], String(Buffer.byteLength(expected)))
  })

  test('forwards a body that parsed as JSON as application/json, whatever the client called it', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const body = '{"model":"llama","messages":[{"role":"user","content":"hi"}]}'
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain']) {
      await (
        await post(`${aya.url}/v1/chat/completions`, body, { 'content-type': contentType })
      ).body.text()
    }
    await (
      await post(`${aya.url}/v1/chat/completions`, body, {
        'content-type': 'application/json; charset=utf-8',
      })
    ).body.text()
    assert.deepEqual(
      received.map((r) => r.headers['content-type']),
      ['application/json', 'application/json', 'application/json; charset=utf-8'],
    )
  })

  test('asks the upstream for an uncompressed response, which it reads on the way through', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const body = '{"model":"llama","messages":[{"role":"user","content":"hi"}]}'
    await (
      await post(`${aya.url}/v1/chat/completions`, body, { 'accept-encoding': 'gzip, br' })
    ).body.text()
    assert.equal(received[0]?.headers['accept-encoding'], 'identity')
  })

  test('does not charge a stream it cannot read (compressed though asked not to) as prefill to its end', async (t) => {
    // The upstream compresses anyway: the tokens cannot be seen, so none is the first.
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' })
      const gzip = createGzip()
      gzip.pipe(res)
      gzip.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n')
      gzip.flush()
      setTimeout(() => gzip.end('data: [DONE]\n\n'), 1500)
    })
    const res = await askLlama(aya.url, true)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(await pendingPrefillTokens(aya.adminUrl), 0)
    await res.body.text()
  })

  test('cuts a client that stops reading its stream after idleMs, freeing the upstream', async (t) => {
    let upstreamClosed = false
    let upstreamBlocked = false
    let lastWriteAtMs = 0
    const event = `data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(60_000) } }] })}\n\n`
    const clock = createManualClock()
    const aya = await startOneUpstreamGateway(
      t,
      (req, res) => {
        req.resume()
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.on('close', () => {
          upstreamClosed = true
        })
        const pump = () => {
          while (!res.destroyed) {
            lastWriteAtMs = Date.now()
            if (!res.write(event)) {
              upstreamBlocked = true
              res.once('drain', pump)
              return
            }
          }
        }
        pump()
      },
      { deps: { clock } },
    )
    const body = '{"model":"llama","stream":true,"messages":[{"role":"user","content":"x"}]}'
    const { socket, close } = await openRawClient(aya.url)
    t.after(close)
    socket.pause() // never reads
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    )
    // The client's socket buffers fill first; then nothing moves.
    for (let i = 0; i < 500 && !(upstreamBlocked && Date.now() - lastWriteAtMs > 300); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(upstreamBlocked, 'backpressure reached the upstream')
    assert.equal(upstreamClosed, false)
    clock.advance(60_000)
    for (let i = 0; i < 200 && !upstreamClosed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(upstreamClosed, 'the upstream request was given up')
  })

  test('reads a response by its content type: a stream asked for and answered as one body', async (t) => {
    // A provider that ignores `stream`: the whole body, after the whole generation.
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"id":"x","object":"chat.completion","choices":[{"message":{"content":"hi"}}],')
      setTimeout(() => res.end('"usage":{"prompt_tokens":9,"completion_tokens":1}}'), 800)
    })
    const res = await askLlama(aya.url, true)
    // Its headers came: no first token will, so its prompt is no longer pending prefill.
    assert.equal(await pendingPrefillTokens(aya.adminUrl), 0)
    await res.body.text()
  })

  test('reads a response by its content type: a plain request answered with a stream', async (t) => {
    // An engine that read `"stream": "true"` leniently: headers at once, the first token after
    // a prefill longer than the one predicted for a plain response (10k tokens at the 10k/s prior).
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      res.flushHeaders()
      setTimeout(() => {
        res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n')
        setTimeout(() => res.end('data: [DONE]\n\n'), 300)
      }, 1600)
    })
    // Aya's own headers go out with the first bytes of the body, so the reply is not awaited yet.
    const reply = post(
      `${aya.url}/v1/chat/completions`,
      JSON.stringify({
        model: 'llama',
        messages: [{ role: 'user', content: 'word '.repeat(8000) }],
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 1300))
    // No first token yet: the prompt is still being prefilled, whatever the prediction said.
    const pending = await pendingPrefillTokens(aya.adminUrl)
    assert.ok(pending > 0, `pending prefill ${pending} before the first token`)
    await (await reply).body.text()
    assert.equal(await pendingPrefillTokens(aya.adminUrl), 0)
  })

  test('answers 504 in the API’s shape when an engine that sent its 200 stays silent past idleMs', async (t) => {
    // As a queued engine does: the head at once, then nothing (undici times the silence on a
    // coarse clock, so the margin is whole seconds).
    const aya = await startOneUpstreamGateway(
      t,
      (req, res) => {
        req.resume()
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.flushHeaders()
      },
      {
        upstream: {
          timeouts: { connectMs: 1000, firstByteMs: 1000, idleMs: 1000, completionMs: 1000 },
        },
      },
    )
    const streamed = await askLlama(aya.url, true)
    assert.equal(streamed.statusCode, 504)
    assert.equal(streamed.headers['x-aya-error-code'], 'LB_ERR_IDLE_TIMEOUT')
    const body = (await streamed.body.json()) as { error: { type: string; message: string } }
    assert.equal(body.error.type, 'server_error')
  })

  test('forwards a request sent with Expect: 100-continue, as curl sends a long prompt', async (t) => {
    let seen = 0
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      seen++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"id":"x","object":"chat.completion","choices":[]}')
    })
    const body = '{"model":"llama","messages":[{"role":"user","content":"hi"}]}'
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: ${body.length}\r\n\r\n`,
    )
    await eventually(() => client.received().includes('100 Continue'), 'the 100 Continue')
    client.socket.write(body)
    await eventually(() => client.received().includes('chat.completion'), 'the engine’s answer')
    assert.match(client.received(), /HTTP\/1\.1 200 OK/)
    assert.equal(seen, 1)
  })

  test('frees a pipelined stream, engine and accounting, when its client hangs up', async (t) => {
    let engineOpen = 0
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      engineOpen++
      res.on('close', () => engineOpen--)
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      // Tokens for as long as the client is there: 20 s unless cut.
      const timer = setInterval(() => {
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'tok' } }] })}\n\n`)
      }, 20)
      res.on('close', () => clearInterval(timer))
      setTimeout(() => res.end('data: [DONE]\n\n'), 20_000).unref()
    })
    const chat = (n: number) => {
      const body = JSON.stringify({
        model: 'llama',
        stream: true,
        messages: [{ role: 'user', content: `${n}` }],
      })
      return `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`
    }
    const client = await openRawClient(aya.url)
    client.socket.on('error', () => {})
    // Two streams on one connection: Node queues the second's response behind the first's.
    client.socket.write(chat(1) + chat(2))
    await eventually(() => engineOpen === 2, 'both streams at the engine')
    client.close()
    await eventually(() => engineOpen === 0, 'both engine streams cut once the client left')
    await eventually(
      async () =>
        metricSample(
          await adminMetrics(aya),
          'aya_endpoint_inflight_requests',
          `upstream="pool",endpoint="${aya.aya.config.upstreams.pool!.endpoints[0]!.url.replace('http://', '')}"`,
        ) === 0,
      'no request left in flight',
    )
  })

  test('frees the engine and accounting of a client that hangs up while its gzip body is decoded', async (t) => {
    let engineOpen = 0
    // An engine generating a long plain answer: nothing comes back until it is done.
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      engineOpen++
      res.on('close', () => engineOpen--)
    })
    // A gzip body is decoded off the event loop: the client's hang-up is seen while it is.
    await postGzipAndHangUp(
      aya.url,
      JSON.stringify({
        model: 'llama',
        messages: [{ role: 'user', content: compressibleText(100_000) }],
      }),
    )
    await eventually(
      () => aya.logs.some((l) => l.msg === 'access'),
      'the request ended, not left waiting on the engine’s answer',
    )
    assert.equal(aya.logs.find((l) => l.msg === 'access')?.error, 'LB_ERR_CLIENT_ABORTED')
    await eventually(() => engineOpen === 0, 'no request left at the engine')
    const endpoint = aya.aya.config.upstreams.pool!.endpoints[0]!.url.replace('http://', '')
    assert.equal(
      metricSample(
        await adminMetrics(aya),
        'aya_endpoint_inflight_requests',
        `upstream="pool",endpoint="${endpoint}"`,
      ),
      0,
    )
  })

  test('waits completionMs, not firstByteMs, for a response that is not streamed', async (t) => {
    // Headers come 3 s after the request, as an engine answers once the generation is done.
    // (undici times headers on a coarse clock, so the margins are whole seconds.)
    const aya = await startOneUpstreamGateway(
      t,
      (req, res) => {
        req.resume()
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end('{"id":"x","object":"chat.completion","choices":[]}')
        }, 3000)
      },
      {
        upstream: {
          timeouts: { connectMs: 1000, firstByteMs: 1000, idleMs: 20_000, completionMs: 20_000 },
        },
      },
    )
    const whole = await askLlama(aya.url, false)
    await whole.body.text()
    assert.equal(whole.statusCode, 200)
    // A stream's headers come at once from an engine: a second without them is a timeout.
    const streamed = await askLlama(aya.url, true)
    await streamed.body.text()
    assert.equal(streamed.statusCode, 504)
  })

  test('reads a gzip body within the byte bound and forwards it decoded', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const sent = JSON.stringify({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] })
    const res = await post(`${aya.url}/v1/chat/completions`, gzipSync(sent), {
      'content-encoding': 'gzip',
    })
    await res.body.text()
    assert.equal(res.statusCode, 200)
    assert.equal(
      received[0]?.body.toString('utf8'),
      sent.replace('"llama"', '"meta-llama/Llama-3.1-8B-Instruct"'),
    )
  })

  test('sends a decoded body upstream without its content-encoding', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const sent = JSON.stringify({ model: 'claude-x', max_tokens: 4, messages: [] })
    const res = await post(`${aya.url}/v1/messages`, gzipSync(sent), { 'content-encoding': 'gzip' })
    await res.body.text()
    assert.equal(res.statusCode, 200)
    assert.equal(received[0]?.body.toString('utf8'), sent)
    assert.equal(received[0]?.headers['content-encoding'], undefined)
  })

  test('refuses a gzip body that inflates past maxBodyBytes with 413', async (t) => {
    const { aya } = await startRecordingLlm(t)
    const padding = 'x'.repeat(32 * 1024 * 1024)
    const sent = JSON.stringify({ model: 'llama', messages: [{ role: 'user', content: padding }] })
    const res = await post(`${aya.url}/v1/chat/completions`, gzipSync(sent), {
      'content-encoding': 'gzip',
    })
    const body = (await res.body.json()) as { error: { type: string } }
    assert.equal(res.statusCode, 413)
    assert.equal(body.error.type, 'invalid_request_error')
  })

  test('refuses a gzip bomb within maxBodyBytes with 413 before parsing it: 16 kB that inflate to 16 MiB', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    // Millions of empty objects: 3 s of JSON.parse on the event loop every client shares.
    const objects = '{},'.repeat(5_000_000)
    const sent = `{"model":"llama","messages":[{"role":"user","content":"hi"}],"x":[${objects}{}]}`
    const res = await post(`${aya.url}/v1/chat/completions`, gzipSync(sent, { level: 9 }), {
      'content-encoding': 'gzip',
    })
    const body = (await res.body.json()) as { error: { type: string; message: string } }
    assert.equal(res.statusCode, 413)
    assert.equal(body.error.type, 'invalid_request_error')
    assert.match(body.error.message, /more than 100 times its encoded size/)
    assert.equal(received.length, 0)
  })

  test('accepts a leading UTF-8 BOM and forwards the JSON without it', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const sent = JSON.stringify({ model: 'claude-x', max_tokens: 4, messages: [] })
    const res = await post(`${aya.url}/v1/messages`, `\uFEFF${sent}`)
    await res.body.text()
    assert.equal(res.statusCode, 200)
    assert.equal(received[0]?.body.toString('utf8'), sent)
  })

  test('forwards a Responses turn that continues a previous response without input', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    await client.responses.create({ model: 'llama', previous_response_id: 'resp_1' })
    assert.equal(received[0]?.path, '/v1/responses')
  })

  test('routes an alias of a wildcard entry, under the alias itself', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    await client.messages.create({
      model: 'claude',
      max_tokens: 4,
      messages: [{ role: 'user', content: 'x' }],
    })
    assert.equal(JSON.parse(received[0]!.body.toString('utf8')).model, 'claude')
  })

  test('routes Anthropic count_tokens by model to the deployment, which counts', async (t) => {
    const { aya, received } = await startRecordingLlm(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    const counted = await client.messages.countTokens({
      model: 'llama',
      messages: [{ role: 'user', content: 'how many?' }],
    })
    assert.equal(counted.input_tokens, 12)
    assert.equal(received[0]?.path, '/v1/messages/count_tokens')
    assert.equal(
      JSON.parse(received[0]!.body.toString('utf8')).model,
      'meta-llama/Llama-3.1-8B-Instruct',
    )
    // No LLM request for the policies, but the access line names the model asked for.
    const counting = () =>
      aya.logs.find((l) => l.msg === 'access' && l.url === '/v1/messages/count_tokens')
    await eventually(() => counting() !== undefined, 'the access line')
    assert.equal(counting()!.model, 'llama')
    await assert.rejects(
      client.messages.countTokens({ model: 'mistral', messages: [] }),
      Anthropic.NotFoundError,
    )
  })

  test('gives an Anthropic response the request id in request-id when the engine sent none', async (t) => {
    const { aya } = await startRecordingLlm(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    const { request_id, response } = await client.messages
      .create({ model: 'claude', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse()
    // The SDK's request id is read from `request-id`: the id Aya logs the request under.
    assert.ok(request_id)
    assert.equal(request_id, response.headers.get('x-request-id'))
    // An OpenAI request keeps to `x-request-id`.
    const openAi = await post(
      `${aya.url}/v1/responses`,
      JSON.stringify({ model: 'llama', input: 'hi' }),
    )
    await openAi.body.dump()
    assert.equal(openAi.statusCode, 200)
    assert.equal(openAi.headers['request-id'], undefined)
  })

  test('keeps the request-id an Anthropic upstream sent as its own', async (t) => {
    const aya = await startOneUpstreamGateway(t, (req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_upstream' })
        res.end(
          JSON.stringify({
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: 'llama',
            content: [],
            stop_reason: 'end_turn',
            stop_sequence: null,
            usage: { input_tokens: 1, output_tokens: 1 },
          }),
        )
      })
    })
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    const message = await client.messages.create({
      model: 'llama',
      max_tokens: 1,
      messages: [{ role: 'user', content: 'hi' }],
    })
    assert.equal(message._request_id, 'req_upstream')
  })

  test('names the endpoint that failed in x-aya-endpoint on Aya’s own error reply when debug headers are on', async (t) => {
    const port = await closedPort()
    const start = async (debugHeaders: boolean) => {
      const aya = await startAya({
        routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models', debugHeaders }],
        models: { llama: { deployments: [{ upstream: 'pool' }] } },
        upstreams: { pool: { endpoints: [{ url: `http://127.0.0.1:${port}`, id: 'gpu-7' }] } },
      })
      t.after(() => aya.close())
      return aya
    }
    const debug = await start(true)
    const failed = await askLlama(debug.url, false)
    await failed.body.dump()
    assert.equal(failed.statusCode, 502)
    assert.equal(failed.headers['x-aya-endpoint'], 'gpu-7')
    // No endpoint was chosen for a model the registry does not know: none is named.
    const unknown = await post(
      `${debug.url}/v1/chat/completions`,
      JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    )
    await unknown.body.dump()
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.headers['x-aya-endpoint'], undefined)
    // Off, the topology stays hidden on errors too.
    const plain = await start(false)
    const hidden = await askLlama(plain.url, false)
    assert.equal(hidden.statusCode, 502)
    assert.doesNotMatch(await hidden.body.text(), /gpu-7|127\.0\.0\.1/)
    assert.equal(hidden.headers['x-aya-endpoint'], undefined)
  })

  test('answers the Anthropic SDK in its own shape: list, retrieve, and a 404 for unknown ids', async (t) => {
    const { aya } = await startRecordingLlm(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    const ids: string[] = []
    for await (const model of client.models.list({ limit: 2 })) ids.push(model.id)
    assert.deepEqual(ids, ['claude', 'llama', 'llama-3.1-8b'])
    const model = await client.models.retrieve('claude-sonnet-4')
    assert.deepEqual([model.type, model.id], ['model', 'claude-sonnet-4'])
    await assert.rejects(client.models.retrieve('gpt-4o'), Anthropic.NotFoundError)
  })

  test('answers the OpenAI SDK retrieve, and a 404 in OpenAI shape for unknown ids', async (t) => {
    const { aya } = await startRecordingLlm(t)
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const ids = (await client.models.list()).data.map((m) => m.id)
    assert.deepEqual(ids, ['claude', 'llama', 'llama-3.1-8b'])
    const model = await client.models.retrieve('llama')
    assert.deepEqual(model, { id: 'llama', object: 'model', created: 0, owned_by: 'aya' })
    await assert.rejects(client.models.retrieve('mistral'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError)
      assert.equal(error.code, 'model_not_found')
      return true
    })
  })

  test('answers other /v1/messages paths in Anthropic error shape', async (t) => {
    const { aya } = await startRecordingLlm(t)
    const res = await post(`${aya.url}/v1/messages/batches`, '{"requests":[]}')
    assert.equal(res.statusCode, 404)
    assert.deepEqual(await res.body.json(), {
      type: 'error',
      error: {
        type: 'not_found_error',
        message: 'unknown API path POST /v1/messages/batches',
      },
      request_id: res.headers['x-request-id'],
    })
  })
})
