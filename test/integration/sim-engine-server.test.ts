import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { countChatTokens } from '../../src/sim/sim-tokenizer.ts'
import { eventually } from '../helpers/eventually.ts'

const MODEL = H100_LLAMA3_8B.modelName

// biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary response JSON
type Json = any

async function json(res: Response): Promise<Json> {
  return res.json()
}

/** Splits an SSE body into its `data:` payloads, checking OpenAI's exact framing on the way. */
function readSse(raw: string): string[] {
  assert.ok(raw.endsWith('data: [DONE]\n\n'), 'stream must end with data: [DONE]')
  const events = raw.split('\n\n')
  assert.equal(events.pop(), '', 'every event ends with a blank line')
  return events.map((event) => {
    assert.match(event, /^data: [^\n]*$/, `bad event framing: ${JSON.stringify(event)}`)
    return event.slice('data: '.length)
  })
}

async function post(
  server: EngineServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

/** The usage vLLM reports for a request nothing of which was cached. */
const plainUsage = (promptTokens: number, completionTokens: number) => ({
  prompt_tokens: promptTokens,
  total_tokens: promptTokens + completionTokens,
  completion_tokens: completionTokens,
  prompt_tokens_details: { cached_tokens: 0 },
})

describe('sim engine server', () => {
  let server: EngineServer
  before(async () => {
    server = await startEngineServer(
      { profile: H100_LLAMA3_8B, seed: 7 },
      { clock: createScaledClock({ speedup: 200 }) },
    )
  })
  after(() => server.close())

  it('streams a chat completion with OpenAI-exact SSE framing and a usage chunk', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say something nice about load balancers' },
    ]
    const res = await post(
      server,
      '/v1/chat/completions',
      { model: MODEL, messages, stream: true, stream_options: { include_usage: true } },
      { 'x-aya-sim-output-tokens': '5' },
    )
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
    const payloads = readSse(await res.text())
    assert.equal(payloads.pop(), '[DONE]')
    const chunks = payloads.map((p): Json => JSON.parse(p))
    for (const c of chunks) {
      assert.equal(c.id, chunks[0].id)
      assert.match(c.id, /^chatcmpl-/)
      assert.equal(c.object, 'chat.completion.chunk')
      assert.equal(typeof c.created, 'number')
      assert.equal(c.model, MODEL)
    }
    const [role, ...rest] = chunks
    assert.deepEqual(role.choices, [
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ])
    const usage = rest.pop()
    assert.deepEqual(usage.choices, [])
    assert.deepEqual(usage.usage, plainUsage(countChatTokens(messages), 5))
    const finish = rest.pop()
    assert.deepEqual(finish.choices, [
      { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' },
    ])
    assert.equal(finish.usage, null)
    assert.equal(rest.length, 5)
    const text = rest.map((c) => c.choices[0].delta.content).join('')
    assert.equal(text.split(' ').length, 5)
  })

  it('omits the usage chunk when include_usage is not set', async () => {
    const res = await post(server, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      max_tokens: 3,
    })
    const chunks = readSse(await res.text())
      .slice(0, -1)
      .map((p): Json => JSON.parse(p))
    assert.equal(chunks.length, 1 + 3 + 1)
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length')
    assert.ok(chunks.every((c) => !('usage' in c)))
  })

  it('sends the usage chunk for empty stream_options, as vLLM defaults include_usage to true', async () => {
    const res = await post(server, '/v1/completions', {
      prompt: 'one two',
      stream: true,
      max_tokens: 2,
      stream_options: {},
    })
    const chunks = readSse(await res.text())
      .slice(0, -1)
      .map((p): Json => JSON.parse(p))
    assert.deepEqual(chunks.at(-1).choices, [])
    assert.deepEqual(chunks.at(-1).usage, plainUsage(2, 2))
    const off = await post(server, '/v1/completions', {
      prompt: 'one two',
      stream: true,
      max_tokens: 2,
      stream_options: { include_usage: false },
    })
    const offChunks = readSse(await off.text()).slice(0, -1)
    assert.ok(offChunks.every((p) => !('usage' in JSON.parse(p))))
  })

  it('puts the running usage on every chunk with continuous_usage_stats, as vLLM does', async () => {
    const messages = [{ role: 'user', content: 'count with me' }]
    const promptTokens = countChatTokens(messages)
    const res = await post(server, '/v1/chat/completions', {
      messages,
      stream: true,
      max_tokens: 3,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    })
    const chunks = readSse(await res.text())
      .slice(0, -1)
      .map((p): Json => JSON.parse(p))
    const running = (n: number) => ({
      prompt_tokens: promptTokens,
      total_tokens: promptTokens + n,
      completion_tokens: n,
    })
    assert.deepEqual(
      chunks.map((c) => c.usage),
      [running(0), running(1), running(2), running(3), running(3), plainUsage(promptTokens, 3)],
    )
    const completion = await post(server, '/v1/completions', {
      prompt: 'one two',
      stream: true,
      max_tokens: 2,
      stream_options: { continuous_usage_stats: true },
    })
    const completionChunks = readSse(await completion.text())
      .slice(0, -1)
      .map((p): Json => JSON.parse(p))
    assert.deepEqual(
      completionChunks.map((c) => c.usage?.completion_tokens),
      [1, 2, 2, 2],
      'include_usage defaults to true, so continuous_usage_stats alone turns both on',
    )
  })

  it('streams a legacy completion as text_completion chunks', async () => {
    const res = await post(server, '/v1/completions', {
      prompt: 'one two three',
      stream: true,
      max_tokens: 4,
      stream_options: { include_usage: true },
    })
    const payloads = readSse(await res.text())
    const chunks = payloads.slice(0, -1).map((p): Json => JSON.parse(p))
    assert.ok(chunks.every((c) => c.object === 'text_completion' && /^cmpl-/.test(c.id)))
    assert.equal(chunks.length, 4 + 1 + 1)
    assert.deepEqual(chunks.at(-1).usage, plainUsage(3, 4))
  })

  it('reports the prompt tokens its prefix cache held, as vLLM’s prompt_tokens_details', async () => {
    const prompt = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ')
    await json(await post(server, '/v1/completions', { prompt, max_tokens: 1 }))
    const again = await json(await post(server, '/v1/completions', { prompt, max_tokens: 1 }))
    assert.ok(again.usage.prompt_tokens_details.cached_tokens >= 192, JSON.stringify(again.usage))
  })

  it('returns usage in a non-streaming chat body', async () => {
    const res = await post(
      server,
      '/v1/chat/completions',
      { model: MODEL, messages: [{ role: 'user', content: 'a b c d' }], max_tokens: 100 },
      { 'x-aya-sim-output-tokens': '12' },
    )
    assert.equal(res.status, 200)
    const body = await json(res)
    assert.equal(body.object, 'chat.completion')
    assert.equal(body.choices[0].message.role, 'assistant')
    assert.equal(body.choices[0].finish_reason, 'stop')
    assert.equal(body.choices[0].message.content.split(' ').length, 12)
    assert.deepEqual(body.usage, plainUsage(5, 12))
  })

  it('returns usage in a non-streaming completions body', async () => {
    const res = await post(server, '/v1/completions', { prompt: 'x y', max_tokens: 2 })
    const body = await json(res)
    assert.equal(body.object, 'text_completion')
    assert.equal(body.choices[0].finish_reason, 'length')
    assert.deepEqual(body.usage, plainUsage(2, 2))
  })

  it('generates 16 tokens on a legacy completion that names no max_tokens, as vLLM does', async () => {
    const body = await json(await post(server, '/v1/completions', { prompt: 'x y z' }))
    assert.equal(body.usage.completion_tokens, 16)
  })

  it('answers 404 to a POST on a path it does not serve, 405 on one served to GET', async () => {
    assert.equal((await post(server, '/v1/responses', { input: 'hi' })).status, 404)
    assert.equal((await post(server, '/v1/models', {})).status, 405)
  })

  it('answers 400 in OpenAI error shape for a prompt over the context window', async () => {
    const content = Array.from({ length: H100_LLAMA3_8B.maxModelLen }, () => 'w').join(' ')
    const res = await post(server, '/v1/chat/completions', {
      messages: [{ role: 'user', content }],
    })
    assert.equal(res.status, 400)
    const body = await json(res)
    assert.equal(body.error.type, 'invalid_request_error')
    assert.equal(body.error.code, 'context_length_exceeded')
    assert.equal(body.error.param, 'messages')
    assert.match(body.error.message, /maximum context length is 131072 tokens/)
  })

  it('answers 400 when prompt plus max_tokens exceeds the context window', async () => {
    const res = await post(server, '/v1/completions', { prompt: 'a b', max_tokens: 131_071 })
    assert.equal(res.status, 400)
    assert.equal((await json(res)).error.code, 'context_length_exceeded')
  })

  it('answers 400 in OpenAI error shape for bad JSON and a bad body', async () => {
    const bad = await post(server, '/v1/chat/completions', '{"messages": [')
    assert.equal(bad.status, 400)
    const body = await json(bad)
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'])
    assert.equal(body.error.type, 'invalid_request_error')
    const noMessages = await post(server, '/v1/chat/completions', { messages: [] })
    assert.equal(noMessages.status, 400)
    assert.equal((await json(noMessages)).error.param, 'messages')
  })

  it('refuses stream_options on a request that does not stream, as vLLM does', async () => {
    for (const [path, body] of [
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }],
      ['/v1/completions', { prompt: 'hi', stream: false }],
    ] as const) {
      const res = await post(server, path, { ...body, stream_options: { include_usage: true } })
      assert.equal(res.status, 400, path)
      const { error } = await json(res)
      assert.equal(error.type, 'invalid_request_error')
      assert.equal(error.param, 'stream_options')
      assert.match(error.message, /only be defined when `stream=True`/)
    }
    const empty = await post(server, '/v1/completions', {
      prompt: 'hi',
      max_tokens: 1,
      stream_options: null,
    })
    assert.equal(empty.status, 200, 'a null stream_options is no option')
  })

  it('answers 404 for a model it does not serve', async () => {
    const res = await post(server, '/v1/chat/completions', {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    })
    assert.equal(res.status, 404)
    assert.equal((await json(res)).error.code, 'model_not_found')
  })

  it('serves a request whose model is empty, as vLLM does', async () => {
    const res = await post(server, '/v1/completions', { model: '', prompt: 'hi', max_tokens: 1 })
    assert.equal(res.status, 200)
    assert.equal((await json(res)).model, MODEL)
  })

  it('serves LoRA adapters under their own names, each caching its prompts apart, until unloaded', async (t) => {
    const adapters = await startEngineServer(
      { profile: H100_LLAMA3_8B, seed: 9, loras: ['sql-lora'] },
      { clock: createScaledClock({ speedup: 200 }) },
    )
    t.after(() => adapters.close())
    const prompt = Array.from({ length: 200 }, (_, i) => `lora${i}`).join(' ')
    const cached = async (model: string) => {
      const res = await post(adapters, '/v1/completions', { model, prompt, max_tokens: 1 })
      assert.equal(res.status, 200, model)
      const body = await json(res)
      assert.equal(body.model, model, 'answered under the name asked for')
      return body.usage.prompt_tokens_details.cached_tokens
    }
    assert.equal(await cached(MODEL), 0)
    assert.equal(await cached('sql-lora'), 0, "the base model's cache is not the adapter's")
    assert.ok((await cached('sql-lora')) >= 192, "the adapter's own prompt hits")
    const listed = await json(await fetch(`${adapters.url}/v1/models`))
    assert.deepEqual(
      listed.data.map((card: Json) => [card.id, card.root, card.parent, card.max_model_len]),
      [
        [MODEL, MODEL, null, 131_072],
        ['sql-lora', 'sql-lora', MODEL, null],
      ],
    )
    adapters.setLoras(['other-lora'])
    const gone = await post(adapters, '/v1/completions', {
      model: 'sql-lora',
      prompt,
      max_tokens: 1,
    })
    assert.equal(gone.status, 404)
    assert.equal(await cached('other-lora'), 0)
  })

  it('lists its model and reports healthy', async () => {
    const health = await fetch(`${server.url}/health`)
    assert.equal(health.status, 200)
    assert.equal(await health.text(), '')
    const models = await json(await fetch(`${server.url}/v1/models`))
    assert.equal(models.object, 'list')
    assert.equal(models.data[0].id, MODEL)
    assert.equal(models.data[0].max_model_len, 131_072)
  })

  it('lists its model as a vLLM ModelCard, with its one default permission', async () => {
    const models = await json(await fetch(`${server.url}/v1/models`))
    const [card] = models.data
    assert.deepEqual(Object.keys(card), [
      'id',
      'object',
      'created',
      'owned_by',
      'root',
      'parent',
      'max_model_len',
      'permission',
    ])
    assert.equal(card.permission.length, 1)
    const { id, created, ...flags } = card.permission[0]
    assert.match(id, /^modelperm-[0-9a-f]+$/)
    assert.equal(created, card.created)
    assert.deepEqual(flags, {
      object: 'model_permission',
      allow_create_engine: false,
      allow_sampling: true,
      allow_logprobs: true,
      allow_search_indices: false,
      allow_view: true,
      allow_fine_tuning: false,
      organization: '*',
      group: null,
      is_blocking: false,
    })
  })

  it('exposes vLLM metric names on /metrics', async () => {
    await post(server, '/v1/completions', { prompt: 'metrics please', max_tokens: 2 })
    const res = await fetch(`${server.url}/metrics`)
    assert.equal(res.status, 200)
    const text = await res.text()
    const labels = `model_name="${MODEL}",engine="0"`
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total',
      'vllm:num_preemptions_total',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
    ]) {
      assert.match(text, new RegExp(`^${name}\\{${labels}\\} [0-9.e+-]+$`, 'm'), name)
    }
    for (const name of [
      'vllm:time_to_first_token_seconds',
      'vllm:inter_token_latency_seconds',
      'vllm:e2e_request_latency_seconds',
    ]) {
      assert.match(text, new RegExp(`^${name}_bucket\\{le="[^"]+",${labels}\\} \\d+$`, 'm'), name)
      assert.match(text, new RegExp(`^${name}_count\\{${labels}\\} [1-9]\\d*$`, 'm'), name)
    }
    assert.match(text, /^vllm:request_success_total\{.*finished_reason="length".*\} [1-9]/m)
    assert.match(text, /^vllm:cache_config_info\{block_size="16",.*num_gpu_blocks="26900"\} 1$/m)
    assert.match(text, /^aya_sim_step_lateness_seconds_count\{/m)
  })

  it('aborts the request in the engine when the client goes away, freeing its KV', async () => {
    const controller = new AbortController()
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'user', content: Array.from({ length: 3000 }, (_, i) => `t${i}`).join(' ') },
        ],
        stream: true,
        max_tokens: 100_000,
      }),
      signal: controller.signal,
    })
    const reader = res.body!.getReader()
    await reader.read()
    await eventually(() => server.engine.stats().running === 1, 'the request running')
    assert.ok(server.engine.stats().kvCacheUsage > 0)
    controller.abort()
    await eventually(() => server.engine.stats().running === 0, 'the aborted request gone')
    assert.equal(server.engine.stats().kvCacheUsage, 0)
    assert.ok(server.engine.stats().requestSuccess.abort >= 1)
  })
})

describe('sim engine server during startup', () => {
  it('answers 503 on /health and inference and lists no models until startupMs has passed', async (t) => {
    const server = await startEngineServer(
      { profile: H100_LLAMA3_8B, startupMs: 20_000 },
      { clock: createScaledClock({ speedup: 200 }) },
    )
    t.after(() => server.close())
    assert.equal((await fetch(`${server.url}/health`)).status, 503)
    assert.deepEqual(await json(await fetch(`${server.url}/v1/models`)), {
      object: 'list',
      data: [],
    })
    const res = await post(server, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }],
    })
    assert.equal(res.status, 503)
    assert.equal((await json(res)).error.code, 503)
    await new Promise((r) => setTimeout(r, 110))
    assert.equal((await fetch(`${server.url}/health`)).status, 200)
    assert.equal((await json(await fetch(`${server.url}/v1/models`))).data.length, 1)
  })
})
