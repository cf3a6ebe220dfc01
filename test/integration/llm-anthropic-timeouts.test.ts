import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { startAya } from '../helpers/aya.ts'
import { startUpstream } from '../helpers/upstreams.ts'

/** Aya in front of one upstream that takes a request and never answers it. */
async function startSilentGateway(t: import('node:test').TestContext) {
  const upstream = await startUpstream(() => {})
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: { 'claude-*': { deployments: [{ upstream: 'pool' }] } },
    upstreams: {
      pool: {
        endpoints: [{ url: upstream.url }],
        timeouts: { firstByteMs: 200, completionMs: 200 },
      },
    },
  })
  t.after(() => aya.close())
  return aya
}

describe('Anthropic errors for an upstream that times out', () => {
  test('a first-byte timeout answers 504 typed timeout_error, as Anthropic’s gateway timeout is', async (t) => {
    const aya = await startSilentGateway(t)
    const client = new Anthropic({ baseURL: aya.url, apiKey: 'k', maxRetries: 0 })
    const error = await client.messages
      .create({
        model: 'claude-test',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'Hi' }],
      })
      .then(
        () => assert.fail('expected an error'),
        (caught: unknown) => caught,
      )
    assert.ok(error instanceof Anthropic.APIError)
    assert.equal(error.status, 504)
    assert.equal(error.headers?.get('x-aya-error-code'), 'LB_ERR_FIRST_BYTE_TIMEOUT')
    assert.equal((error.error as { error: { type: string } }).error.type, 'timeout_error')
  })
})
