import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { request } from 'undici'
import { anthropicNotFound } from '../helpers/anthropic-client.ts'
import { startAya } from '../helpers/aya.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts'

/** Asserts that `res`'s body is an Anthropic invalid_request_error whose message matches `message`. */
async function assertAnthropicInvalidRequest(
  res: Awaited<ReturnType<typeof request>>,
  message: RegExp,
): Promise<void> {
  const body = (await res.body.json()) as {
    type: string
    error: { type: string; message: string }
  }
  assert.equal(body.type, 'error')
  assert.equal(body.error.type, 'invalid_request_error')
  assert.match(body.error.message, message)
}

/** An upstream that answers every API with a minimal valid body echoing what it received. */
function startEchoLlm(): Promise<TestUpstream & { bodies: Array<Record<string, unknown>> }> {
  const bodies: Array<Record<string, unknown>> = []
  return startUpstream((req, res) => {
    let raw = ''
    req.on('data', (chunk) => {
      raw += chunk
    })
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>
      bodies.push({ ...body, _path: req.url })
      res.writeHead(200, { 'content-type': 'application/json' })
      if (req.url === '/v1/messages') {
        res.end(
          JSON.stringify({
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: body.model,
            content: [{ type: 'text', text: 'hi' }],
            stop_reason: 'end_turn',
            stop_sequence: null,
            usage: { input_tokens: 3, output_tokens: 1 },
          }),
        )
      } else if (req.url === '/v1/embeddings') {
        res.end(
          JSON.stringify({
            object: 'list',
            model: body.model,
            data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
            usage: { prompt_tokens: 2, total_tokens: 2 },
          }),
        )
      } else {
        res.end(
          JSON.stringify({
            id: 'resp_1',
            object: 'response',
            model: body.model,
            output: [],
            status: 'completed',
          }),
        )
      }
    })
  }).then((upstream) => Object.assign(upstream, { bodies }))
}

async function startGateway(t: import('node:test').TestContext) {
  const upstream = await startEchoLlm()
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: {
      'llama-3.1-8b': {
        aliases: ['llama'],
        loras: ['sql-lora'],
        deployments: [{ upstream: 'pool', model: 'meta-llama/Llama-3.1-8B-Instruct' }],
      },
      'claude-*': { deployments: [{ upstream: 'pool' }] },
      'text-embedding-*': { deployments: [{ upstream: 'pool' }] },
    },
    upstreams: { pool: { endpoints: [{ url: upstream.url }] } },
  })
  t.after(() => aya.close())
  return { aya, upstream }
}

describe('LLM APIs on a models gateway', () => {
  test('routes Anthropic messages through the official SDK, by wildcard, keeping the name', async (t) => {
    const { aya, upstream } = await startGateway(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    const message = await client.messages.create({
      model: 'claude-sonnet-4',
      max_tokens: 16,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hello' }],
    })
    assert.equal(message.content[0]?.type, 'text')
    assert.equal(upstream.bodies[0]?.model, 'claude-sonnet-4')
    assert.equal(upstream.bodies[0]?._path, '/v1/messages')
  })

  test('answers Anthropic errors in Anthropic shape: unknown model 404, missing max_tokens 400', async (t) => {
    const { aya } = await startGateway(t)
    assert.match(String((await anthropicNotFound(aya.url, 'gpt-4o')).message), /llama-3\.1-8b/)
    const res = await request(`${aya.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-x', messages: [] }),
    })
    assert.equal(res.statusCode, 400)
    await assertAnthropicInvalidRequest(res, /max_tokens/)
  })

  test('routes OpenAI embeddings and responses, resolving aliases and LoRA adapters', async (t) => {
    const { aya, upstream } = await startGateway(t)
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const embedding = await client.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'hello',
    })
    assert.equal(embedding.data.length, 1)
    await client.responses.create({ model: 'llama', input: 'Hi', instructions: 'Be brief.' })
    await client.responses.create({
      model: 'sql-lora',
      input: [{ role: 'user', content: 'SELECT' }],
    })
    assert.deepEqual(
      upstream.bodies.map((b) => [b._path, b.model]),
      [
        ['/v1/embeddings', 'text-embedding-3-small'],
        ['/v1/responses', 'meta-llama/Llama-3.1-8B-Instruct'],
        ['/v1/responses', 'sql-lora'],
      ],
    )
  })

  test('lists models, aliases and adapters on GET /v1/models, but not wildcard patterns', async (t) => {
    const { aya } = await startGateway(t)
    const client = new OpenAI({ baseURL: `${aya.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const ids = (await client.models.list()).data.map((m) => m.id)
    assert.deepEqual(ids, ['llama', 'llama-3.1-8b', 'sql-lora'])
  })

  test('refuses an Anthropic models limit that is not an integer from 1 to 1000 with 400', async (t) => {
    const { aya } = await startGateway(t)
    const list = (query: string) =>
      request(`${aya.url}/v1/models?${query}`, { headers: { 'anthropic-version': '2023-06-01' } })
    for (const limit of ['0', 'abc', '1001', '2.5', '-1', '']) {
      const res = await list(`limit=${limit}`)
      assert.equal(res.statusCode, 400, `limit=${limit}`)
      assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_BAD_REQUEST')
      await assertAnthropicInvalidRequest(res, /limit/)
    }
    for (const [limit, listed] of [
      ['1', 1],
      ['1000', 3],
    ] as const) {
      const res = await list(`limit=${limit}`)
      assert.equal(res.statusCode, 200, `limit=${limit}`)
      assert.equal(((await res.body.json()) as { data: unknown[] }).data.length, listed)
    }
    // Through Anthropic's own client, a bad limit raises its BadRequestError.
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'unused', maxRetries: 0 })
    await assert.rejects(client.models.list({ limit: 0 }), Anthropic.BadRequestError)
  })
})
