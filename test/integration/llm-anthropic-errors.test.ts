import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { anthropicNotFound } from '../helpers/anthropic-client.ts'
import { type RunningAya, startAdmissionGateway } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'

interface AnthropicError {
  readonly type: string
  readonly error: { readonly type: string; readonly message: string }
  readonly request_id: string
}

const post = (aya: RunningAya, path: string, body: string, headers: Record<string, string> = {}) =>
  request(`${aya.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })

async function anthropicError(
  res: Awaited<ReturnType<typeof request>>,
  status: number,
  type: string,
): Promise<AnthropicError> {
  assert.equal(res.statusCode, status)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  const body = (await res.body.json()) as AnthropicError
  assert.deepEqual(Object.keys(body), ['type', 'error', 'request_id'])
  assert.equal(body.request_id, res.headers['x-request-id'])
  assert.equal(body.type, 'error')
  assert.deepEqual(Object.keys(body.error), ['type', 'message'])
  assert.equal(body.error.type, type)
  assert.ok(body.error.message.length > 0)
  return body
}

/** Resolves once some request waits in the fleet's admission queue (polls the admin metrics). */
async function waitForQueue(aya: RunningAya): Promise<void> {
  await eventually(async () => {
    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    return /^aya_admission_queue_depth\{upstream="fleet",[^}]*\} [1-9]/m.test(metrics)
  }, 'a request waiting in the admission queue')
}

/** A prompt of `words` words, unique so nothing is cached. */
const prompt = (words: number) => `${Math.random()} ${'lorem '.repeat(words)}`

describe('Anthropic /v1/messages errors through Aya and a simulated engine', () => {
  test('a malformed JSON body and a missing model answer 400 in Anthropic’s shape', async (t) => {
    const aya = await startAdmissionGateway(t)
    const malformed = await post(aya, '/v1/messages', '{"model": "llama", "messages": [')
    const bad = await anthropicError(malformed, 400, 'invalid_request_error')
    assert.equal(malformed.headers['x-aya-error-code'], 'LB_ERR_BAD_REQUEST')
    assert.match(bad.error.message, /JSON/)
    assert.ok(bad.request_id.length > 0)

    const noModel = await post(
      aya,
      '/v1/messages',
      JSON.stringify({ max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] }),
    )
    const missing = await anthropicError(noModel, 400, 'invalid_request_error')
    assert.equal(noModel.headers['x-aya-error-code'], 'LB_ERR_BAD_REQUEST')
    assert.match(missing.error.message, /model/)

    // The route itself works: a chat completion reaches the engine.
    const ok = await post(
      aya,
      '/v1/chat/completions',
      JSON.stringify({
        model: 'llama',
        max_tokens: 2,
        messages: [{ role: 'user', content: 'Hi' }],
      }),
    )
    assert.equal(ok.statusCode, 200)
    await ok.body.dump()
  })

  test('an error carries the request’s id in request_id, the caller’s own x-request-id when sent', async (t) => {
    const aya = await startAdmissionGateway(t)
    const body = JSON.stringify({ model: 'gpt-17', max_tokens: 5, messages: [] })
    const own = await post(aya, '/v1/messages', body, { 'x-request-id': 'req_abc123' })
    assert.equal((await anthropicError(own, 404, 'not_found_error')).request_id, 'req_abc123')
    // Through Anthropic's own client, which keeps the body on the error it raises.
    const error = await anthropicNotFound(aya.url, 'gpt-17')
    const sent = error.error as { request_id?: string }
    assert.equal(sent.request_id, error.headers?.get('x-request-id'))
    assert.ok(sent.request_id)
  })

  test('an error’s request id reaches the Anthropic SDK’s requestID, through the request-id header', async (t) => {
    const aya = await startAdmissionGateway(t)
    const error = await anthropicNotFound(aya.url, 'gpt-17')
    // The SDK reads `request-id`, as Anthropic sends it, not `x-request-id`.
    assert.ok(error.requestID)
    assert.equal(error.requestID, (error.error as { request_id?: string }).request_id)
    assert.equal(error.requestID, error.headers?.get('x-request-id'))
    // An OpenAI-shaped error keeps to OpenAI's `x-request-id` alone.
    const openAi = await post(
      aya,
      '/v1/chat/completions',
      JSON.stringify({ model: 'gpt-17', messages: [{ role: 'user', content: 'Hi' }] }),
    )
    await openAi.body.dump()
    assert.equal(openAi.statusCode, 404)
    assert.equal(openAi.headers['request-id'], undefined)
  })

  test('an admission shed and a missed deadline answer 503 with Retry-After in Anthropic’s shape', async (t) => {
    const aya = await startAdmissionGateway(t)
    // A100 prefill is ~12k tokens/s: a prompt of ~12k tokens keeps the engine busy for about a
    // second, far past the 50 ms TTFT SLO and the 300 ms wait.
    const busy = Array.from({ length: 3 }, () =>
      post(
        aya,
        '/v1/chat/completions',
        JSON.stringify({
          model: 'llama',
          max_tokens: 4,
          messages: [{ role: 'user', content: prompt(12_000) }],
        }),
      ),
    )
    // Once one of them waits in the admission queue, the engine is known to be busy.
    await waitForQueue(aya)
    const message = (priority?: string) =>
      post(
        aya,
        '/v1/messages',
        JSON.stringify({
          model: 'llama',
          max_tokens: 4,
          messages: [{ role: 'user', content: prompt(6000) }],
        }),
        { 'anthropic-version': '2023-06-01', ...(priority ? { 'x-priority': priority } : {}) },
      )

    const shed = await message('batch')
    await anthropicError(shed, 503, 'overloaded_error')
    assert.equal(shed.headers['x-aya-error-code'], 'LB_ERR_SHED')
    assert.ok(
      Number(shed.headers['retry-after']) >= 1,
      `retry-after ${shed.headers['retry-after']}`,
    )

    const late = await message()
    await anthropicError(late, 503, 'overloaded_error')
    assert.equal(late.headers['x-aya-error-code'], 'LB_ERR_DEADLINE')
    assert.ok(
      Number(late.headers['retry-after']) >= 1,
      `retry-after ${late.headers['retry-after']}`,
    )

    // The first took the engine; the others waited behind it like the message did.
    const statuses: number[] = []
    for (const res of await Promise.all(busy)) {
      statuses.push(res.statusCode)
      await res.body.dump()
    }
    assert.ok(statuses.includes(200), `${statuses}`)
  })
})
