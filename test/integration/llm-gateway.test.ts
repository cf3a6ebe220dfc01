import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { request } from 'undici'
import { parseConfigObject } from '../../src/config/load.ts'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { startAya } from '../helpers/aya.ts'
import { openRawClient } from '../helpers/raw-client.ts'

const config = (overrides: Record<string, unknown> = {}) => ({
  routes: [{ name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models' }],
  models: {
    'llama-3.1-8b': {
      deployments: [{ upstream: 'fleet', model: 'meta-llama/Llama-3.1-8B-Instruct' }],
    },
  },
  upstreams: {
    fleet: { policy: 'round-robin', sim: { replicas: 2, profile: 'h100-llama3-8b', speedup: 20 } },
  },
  ...overrides,
})

/**
 * Aya with the aya policy over one real-time simulated H100, an OpenAI client for it, and a
 * reader of one (single-series) gauge from its metrics: for the router-side accounting tests.
 */
async function startAccountingGateway(t: { after(fn: () => Promise<void>): void }) {
  const aya = await startAya(
    config({
      upstreams: {
        fleet: { policy: 'aya', sim: { replicas: 1, profile: 'h100-llama3-8b', speedup: 1 } },
      },
    }),
  )
  t.after(() => aya.close())
  const gauge = async (name: string): Promise<number | undefined> => {
    const text = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`))
    return line === undefined ? undefined : Number(line.split(' ').at(-1))
  }
  const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const metrics = async () => (await request(`${aya.adminUrl}/metrics`)).body.text()
  return { gauge, client, metrics, url: aya.url }
}

describe('LLM gateway route (gateway: models)', () => {
  test('serves chat completions from a simulated fleet through the official openai client', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const completion = await client.chat.completions.create({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'Say hello in five words' }],
      max_tokens: 5,
    })
    assert.equal(completion.choices[0]!.message.role, 'assistant')
    assert.equal(completion.usage?.completion_tokens, 5)
    assert.ok((completion.usage?.prompt_tokens ?? 0) > 0)

    const stream = await client.chat.completions.create({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'Stream please' }],
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      if (chunk.usage) usage = chunk.usage
    }
    assert.ok(text.length > 0)
    assert.equal(usage?.completion_tokens, 4)
  })

  test('routes a LoRA adapter to its model’s simulated fleet, which serves the adapters a reload adds without a restart', async (t) => {
    const withLoras = (loras: string[]) =>
      config({
        models: {
          'llama-3.1-8b': {
            loras,
            deployments: [{ upstream: 'fleet', model: 'meta-llama/Llama-3.1-8B-Instruct' }],
          },
        },
      })
    const aya = await startAya(withLoras(['sql-lora']))
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const ask = (model: string) =>
      client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Write a query' }],
        max_tokens: 2,
      })
    assert.equal((await ask('sql-lora')).model, 'sql-lora')
    const started = () => aya.logs.filter((line) => line.msg === 'simulated fleet started').length
    assert.equal(started(), 1)
    const reload = (loras: string[]) =>
      aya.aya.reload(
        parseConfigObject(
          {
            listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
            admin: { address: '127.0.0.1', port: 0 },
            ...withLoras(loras),
          },
          {},
        ),
      )
    reload(['sql-lora', 'chat-lora'])
    assert.equal((await ask('chat-lora')).model, 'chat-lora')
    assert.equal(started(), 1, 'the same engines, which keep their caches')
    reload(['chat-lora'])
    await assert.rejects(
      ask('sql-lora'),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 404,
    )
    // The engines themselves unloaded it, as well as Aya's registry forgetting it.
    const [engineUrl] = aya.logs.find((line) => line.msg === 'simulated fleet started')!
      .urls as string[]
    const listed = (await (await request(`${engineUrl}/v1/models`)).body.json()) as {
      data: Array<{ id: string }>
    }
    assert.deepEqual(
      listed.data.map((card) => card.id),
      ['meta-llama/Llama-3.1-8B-Instruct', 'chat-lora'],
    )
  })

  test('accounts router-side for a stream as it passes: KV while it lives, then its decode pace', async (t) => {
    const { gauge, client } = await startAccountingGateway(t)
    const stream = await client.chat.completions.create({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'Count to two hundred' }],
      max_tokens: 200,
      stream: true,
    })
    let chunks = 0
    let kvWhileStreaming: number | undefined
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) chunks++
      if (chunks === 20) kvWhileStreaming = await gauge('aya_endpoint_kv_tokens')
    }
    assert.equal(chunks, 200)
    assert.ok((kvWhileStreaming ?? 0) > 20, `KV held mid-stream: ${kvWhileStreaming}`)
    assert.equal(await gauge('aya_endpoint_kv_tokens'), 0)
    assert.equal(await gauge('aya_endpoint_pending_prefill_tokens'), 0)
    const itlSeconds = await gauge('aya_endpoint_decode_itl_seconds')
    assert.ok(itlSeconds !== undefined && itlSeconds > 0 && itlSeconds < 1, `pace ${itlSeconds}`)
  })

  test('serves Anthropic messages from the simulated fleet, accounting the stream as it passes', async (t) => {
    const { gauge, metrics, url } = await startAccountingGateway(t)
    const client = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 })
    const stream = client.messages.stream({
      model: 'llama-3.1-8b',
      max_tokens: 120,
      system: 'Count.',
      messages: [{ role: 'user', content: 'Count to one hundred and twenty' }],
    })
    let deltas = 0
    let kvWhileStreaming: number | undefined
    for await (const event of stream) {
      if (event.type === 'content_block_delta') deltas++
      if (deltas === 20 && kvWhileStreaming === undefined)
        kvWhileStreaming = await gauge('aya_endpoint_kv_tokens')
    }
    const final = await stream.finalMessage()
    assert.equal(deltas, 120)
    assert.equal(final.usage.output_tokens, 120)
    assert.ok((kvWhileStreaming ?? 0) > 20, `KV held mid-stream: ${kvWhileStreaming}`)
    assert.equal(await gauge('aya_endpoint_kv_tokens'), 0)
    // Aya read the Anthropic stream's usage (input at message_start, the rest at message_delta)
    // and its token events: the counts and the first token reached its metrics.
    const text = await metrics()
    const counted = (kind: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith('aya_llm_tokens_total{') && l.includes(`kind="${kind}"`))
          ?.split(' ')
          .at(-1),
      )
    assert.equal(counted('completion'), 120)
    assert.equal(
      counted('prompt'),
      final.usage.input_tokens + (final.usage.cache_read_input_tokens ?? 0),
    )
    assert.match(text, /aya_llm_ttft_seconds_count\{[^}]*\} 1\n/)
  })

  test('counts a response that is not streamed as pending prefill only until its prefill should be done', async (t) => {
    const { gauge, client } = await startAccountingGateway(t)
    // About 2,000 prompt tokens (a fraction of a second to prefill), then 300 decoded (seconds):
    // the headers, and so the first byte, come only when all of it is done.
    let done = false
    const completion = client.chat.completions
      .create({
        model: 'llama-3.1-8b',
        messages: [{ role: 'user', content: 'word '.repeat(2000) }],
        max_tokens: 300,
      })
      .finally(() => {
        done = true
      })
    const samples: Array<{ pending: number; kv: number }> = []
    while (!done) {
      const [pending, kv] = await Promise.all([
        gauge('aya_endpoint_pending_prefill_tokens'),
        gauge('aya_endpoint_kv_tokens'),
      ])
      if (!done) samples.push({ pending: pending ?? -1, kv: kv ?? -1 })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.equal((await completion).usage?.completion_tokens, 300)
    // Late in the generation (its KV still held), its prompt is no longer queued ahead of the
    // next one.
    const late = samples.at(-1)
    assert.ok(samples.length >= 5 && late!.kv > 0 && late!.pending === 0, JSON.stringify(samples))
  })

  test('serves legacy completions, text and token ids, through the official openai client', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const text = await client.completions.create({
      model: 'llama-3.1-8b',
      prompt: 'Once upon a time',
      max_tokens: 3,
    })
    assert.ok(text.choices[0]!.text.length > 0)
    assert.equal(text.usage?.completion_tokens, 3)
    // A prompt of token ids reaches the engine as ids: it counts exactly that many.
    const ids = await client.completions.create({
      model: 'llama-3.1-8b',
      prompt: [101, 2023, 2003, 1037, 3231],
      max_tokens: 2,
    })
    assert.equal(ids.usage?.prompt_tokens, 5)
    assert.equal(ids.usage?.completion_tokens, 2)
  })

  test('lists the configured models on GET /v1/models', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const models = await client.models.list()
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['llama-3.1-8b'],
    )
  })

  test('answers an unknown model with 404 in OpenAI shape, listing the known models', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    await assert.rejects(
      client.chat.completions.create({
        model: 'gpt-17',
        messages: [{ role: 'user', content: 'x' }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError)
        assert.equal(error.code, 'model_not_found')
        assert.match(error.message, /llama-3\.1-8b/)
        assert.equal(error.headers?.get('x-aya-error-code'), 'LB_ERR_UNKNOWN_MODEL')
        return true
      },
    )
    // Asked for by id, the same.
    await assert.rejects(client.models.retrieve('gpt-17'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError)
      assert.equal(error.code, 'model_not_found')
      assert.match(error.message, /'gpt-17'.*llama-3\.1-8b/)
      return true
    })
    assert.equal((await client.models.retrieve('llama-3.1-8b')).id, 'llama-3.1-8b')
  })

  test('answers malformed JSON and a missing model with 400 in OpenAI shape, on every OpenAI API', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const cases: Array<[string, string]> = [
      ['/v1/chat/completions', '{not json'],
      ['/v1/chat/completions', JSON.stringify({ messages: [] })],
      ['/v1/completions', '{not json'],
      ['/v1/completions', JSON.stringify({ prompt: 'hello' })],
      ['/v1/responses', '{not json'],
      ['/v1/responses', JSON.stringify({ input: 'hello' })],
      ['/v1/embeddings', '{not json'],
      ['/v1/embeddings', JSON.stringify({ input: 'hello' })],
    ]
    for (const [path, body] of cases) {
      const res = await request(`${aya.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      assert.equal(res.statusCode, 400, `${path} ${body}`)
      assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_BAD_REQUEST')
      const json = (await res.body.json()) as {
        error: { type: string; message: string; param: unknown }
      }
      assert.equal(json.error.type, 'invalid_request_error')
      assert.ok(json.error.message.length > 0)
    }
  })

  test('times out a request body that stalls, with 408, rather than hold it open', async (t) => {
    const clock = createManualClock()
    const aya = await startAya(config(), {}, { clock })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    // Headers and a first piece of the body, then nothing.
    client.socket.write(
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
        'content-length: 1000\r\n\r\n{"model":"llama-3.1-8b",',
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(client.received(), '', 'waiting for the rest of the body')
    clock.advance(60_000)
    for (let i = 0; i < 100 && client.received() === ''; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.match(client.received(), /^HTTP\/1\.1 408 /)
    assert.match(client.received(), /LB_ERR_REQUEST_TIMEOUT/)
    // The rest of the body is unread: the connection is closed, not kept for another request.
    assert.match(client.received(), /connection: close/i)
    for (let i = 0; i < 100 && !client.socket.readableEnded; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(client.socket.readableEnded, 'the server closed the connection')
  })

  test('answers a body nested thousands deep, which is legal JSON, with 400 rather than 500', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const depth = 20_000
    const res = await request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model":"llama-3.1-8b","messages":[{"role":"user","content":"hi"}],"tools":${'['.repeat(depth)}1${']'.repeat(depth)}}`,
    })
    assert.equal(res.statusCode, 400)
    const json = (await res.body.json()) as { error: { type: string; message: string } }
    assert.equal(json.error.type, 'invalid_request_error')
    assert.match(json.error.message, /nested too deeply/)
  })

  test('serves the APIs under a prefix the route rewrites away, errors in the API’s shape', async (t) => {
    const aya = await startAya(
      config({
        routes: [
          {
            name: 'openai',
            match: { pathPrefix: '/openai' },
            rewrite: { pathPrefix: '/' },
            gateway: 'models',
            maxBodyBytes: 2048,
          },
        ],
      }),
    )
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/openai/v1`, apiKey: 'unused', maxRetries: 0 })
    const completion = await client.chat.completions.create({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 3,
    })
    assert.equal(completion.usage?.completion_tokens, 3)
    assert.deepEqual(
      (await client.models.list()).data.map((m) => m.id),
      ['llama-3.1-8b'],
    )
    const anthropic = await request(`${aya.url}/openai/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-17', max_tokens: 3, messages: [] }),
    })
    assert.equal(anthropic.statusCode, 404)
    const json = (await anthropic.body.json()) as { type: string; error: { type: string } }
    assert.equal(json.type, 'error')
    assert.equal(json.error.type, 'not_found_error')
    // Refused before its body is read (too large), still in the API's shape.
    const tooLarge = await request(`${aya.url}/openai/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', max_tokens: 3, messages: [], pad: 'x'.repeat(3000) }),
    })
    assert.equal(tooLarge.statusCode, 413)
    assert.equal(((await tooLarge.body.json()) as { type: string }).type, 'error')
  })

  test('counts the bytes of replies Aya writes itself in aya_response_bytes_total', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const res = await request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    })
    const bodyBytes = Buffer.byteLength(await res.body.text())
    const models = Buffer.byteLength(await (await request(`${aya.url}/v1/models`)).body.text())
    const sent = async () =>
      (await (await request(`${aya.adminUrl}/metrics`)).body.text())
        .split('\n')
        .filter((line) => line.startsWith('aya_response_bytes_total{'))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
    // A request is counted once its response has finished, which may trail the client's read.
    for (let i = 0; i < 40 && (await sent()) < bodyBytes + models; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.equal(await sent(), bodyBytes + models)
  })

  test('answers HEAD /v1/models as GET, without a body', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const res = await request(`${aya.url}/v1/models`, { method: 'HEAD' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'application/json')
    assert.equal(await res.body.text(), '')
  })

  test('answers another method on an API path with 405 and Allow, in the API’s shape', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const cases: Array<[string, string, string]> = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['PUT', '/v1/completions', 'POST'],
      ['DELETE', '/v1/responses', 'POST'],
      ['OPTIONS', '/v1/embeddings', 'POST'],
      ['GET', '/v1/messages', 'POST'],
      ['GET', '/v1/messages/count_tokens', 'POST'],
      ['POST', '/v1/models', 'GET, HEAD'],
      ['DELETE', '/v1/models/llama-3.1-8b', 'GET, HEAD'],
    ]
    for (const [method, path, allow] of cases) {
      const res = await request(`${aya.url}${path}`, { method })
      const what = `${method} ${path}`
      assert.equal(res.statusCode, 405, what)
      assert.equal(res.headers.allow, allow, what)
      assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_METHOD_NOT_ALLOWED', what)
      const body = (await res.body.json()) as { type?: string; error: { type: string } }
      assert.equal(body.error.type, 'invalid_request_error', what)
      assert.equal(body.type, path.startsWith('/v1/messages') ? 'error' : undefined, what)
    }
    const head = await request(`${aya.url}/v1/chat/completions`, { method: 'HEAD' })
    assert.equal(head.statusCode, 405)
    assert.equal(head.headers.allow, 'POST')
    assert.equal(await head.body.text(), '')
    // A path no API has is still unknown, and the models list still answers GET.
    const unknown = await request(`${aya.url}/v1/nowhere`)
    assert.equal(unknown.statusCode, 404)
    assert.equal(
      ((await unknown.body.json()) as { error: { code: string } }).error.code,
      'unknown_url',
    )
    const models = await request(`${aya.url}/v1/models`)
    assert.equal(models.statusCode, 200)
    await models.body.dump()
  })

  test('answers an over-long prompt with the engine’s own 400', async (t) => {
    const aya = await startAya(config())
    t.after(() => aya.close())
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const words = 'word '.repeat(140_000)
    await assert.rejects(
      client.chat.completions.create({
        model: 'llama-3.1-8b',
        messages: [{ role: 'user', content: words }],
      }),
      (error: unknown) => error instanceof OpenAI.BadRequestError,
    )
  })

  test('refuses a body over maxBodyBytes with 413 in OpenAI shape', async (t) => {
    const aya = await startAya(
      config({
        listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxBodyBytes: 2048 }],
      }),
    )
    t.after(() => aya.close())
    const res = await request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'llama-3.1-8b',
        messages: [{ role: 'user', content: 'x'.repeat(5000) }],
      }),
    })
    assert.equal(res.statusCode, 413)
    const json = (await res.body.json()) as { error: { type: string; code: string } }
    assert.equal(json.error.code, 'LB_ERR_BODY_TOO_LARGE')
  })
  test('echoes the chosen endpoint in x-aya-endpoint only when debug headers are on', async (t) => {
    const plain = await startAya(config())
    t.after(() => plain.close())
    const debug = await startAya(
      config({
        routes: [
          { name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models', debugHeaders: true },
        ],
      }),
    )
    t.after(() => debug.close())
    const body = JSON.stringify({
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    })
    const send = (url: string) =>
      request(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
    const hidden = await send(plain.url)
    await hidden.body.dump()
    assert.equal(hidden.headers['x-aya-endpoint'], undefined)
    const shown = await send(debug.url)
    await shown.body.dump()
    assert.match(String(shown.headers['x-aya-endpoint']), /^127\.0\.0\.1:\d+$/)
  })

  test('the aya policy keeps a conversation on the endpoint that holds it, and a session together', async (t) => {
    const aya = await startAya(
      config({
        routes: [
          { name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models', debugHeaders: true },
        ],
        upstreams: {
          fleet: { policy: 'aya', sim: { replicas: 3, profile: 'h100-llama3-8b', speedup: 20 } },
        },
      }),
    )
    t.after(() => aya.close())
    const send = async (messages: unknown[], session?: string) => {
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(session === undefined ? {} : { 'x-session-id': session }),
        },
        body: JSON.stringify({ model: 'llama-3.1-8b', messages, max_tokens: 2 }),
      })
      await res.body.dump()
      assert.equal(res.statusCode, 200)
      return String(res.headers['x-aya-endpoint'])
    }
    // Each conversation's turns extend the one before: the prefix index sees where it lives.
    const homes = new Set<string>()
    for (let c = 0; c < 3; c++) {
      const history: unknown[] = [
        { role: 'system', content: `conversation ${c}: ${'context '.repeat(1500)}` },
        { role: 'user', content: 'first question' },
      ]
      const home = await send(history)
      homes.add(home)
      for (let turn = 2; turn <= 4; turn++) {
        history.push({ role: 'assistant', content: 'an answer' })
        history.push({ role: 'user', content: `question ${turn}` })
        assert.equal(await send(history), home, `conversation ${c}, turn ${turn}`)
      }
    }
    // Cold conversations spread: with an idle fleet, not all on one endpoint.
    assert.ok(homes.size > 1, `homes ${[...homes]}`)
    // Prompts too short to index: the session header keeps them together.
    for (let s = 0; s < 3; s++) {
      const first = await send([{ role: 'user', content: `hi ${s}` }], `session-${s}`)
      assert.equal(await send([{ role: 'user', content: `again ${s}` }], `session-${s}`), first)
    }
  })

  test('reads the session from the route’s sessionHeader, scoped by API key, and hands it to the policy', async (t) => {
    const aya = await startAya(
      config({
        routes: [
          {
            name: 'llm',
            match: { pathPrefix: '/v1' },
            gateway: 'models',
            debugHeaders: true,
            // Configured in any case: Node hands headers over lowercased.
            sessionHeader: 'X-Conversation',
          },
        ],
        upstreams: {
          fleet: {
            policy: 'consistent-hash-session',
            sim: { replicas: 4, profile: 'h100-llama3-8b', speedup: 20 },
          },
        },
      }),
    )
    t.after(() => aya.close())
    const endpointOf = async (session: string, turn: number, apiKey?: string) => {
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-conversation': session,
          ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
        },
        body: JSON.stringify({
          model: 'llama-3.1-8b',
          messages: [{ role: 'user', content: `turn ${turn} of ${session}` }],
          max_tokens: 1,
        }),
      })
      await res.body.dump()
      assert.equal(res.statusCode, 200)
      return String(res.headers['x-aya-endpoint'])
    }
    const seen = new Set<string>()
    for (let s = 0; s < 8; s++) {
      const first = await endpointOf(`conv-${s}`, 1)
      // Different text every turn: only the session keeps the turns together.
      assert.equal(await endpointOf(`conv-${s}`, 2), first)
      assert.equal(await endpointOf(`conv-${s}`, 3), first)
      seen.add(first)
    }
    // Eight sessions on a four-endpoint ring: all on one endpoint has odds of 4 × 4⁻⁸.
    assert.ok(seen.size > 1, `every session went to ${[...seen].join(', ')}`)

    // Session ids are scoped by API key: eight tenants that all call their session "1" are eight
    // sessions, each kept together.
    const tenants = new Set<string>()
    for (let k = 0; k < 8; k++) {
      const first = await endpointOf('1', 1, `sk-tenant-${k}`)
      assert.equal(await endpointOf('1', 2, `sk-tenant-${k}`), first)
      tenants.add(first)
    }
    assert.ok(tenants.size > 1, `every tenant's session "1" went to ${[...tenants].join(', ')}`)
  })
})
