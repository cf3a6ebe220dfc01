import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { llmErrorFormat } from '../../../src/proxy/models-gateway.ts'

const render = (...args: Parameters<typeof llmErrorFormat>) =>
  JSON.parse(llmErrorFormat(...args)('LB_ERR_NO_ROUTE', { message: 'nope', requestId: 'r' }))

const ANTHROPIC_404 = {
  type: 'error',
  error: { type: 'not_found_error', message: 'nope' },
  request_id: 'r',
}

describe('LLM route error shapes', () => {
  test('answers every /v1/messages path in Anthropic shape, query or not', () => {
    for (const url of [
      '/v1/messages',
      '/v1/messages?beta=true',
      '/v1/messages/count_tokens',
      '/v1/messages/batches/msgbatch_1',
    ]) {
      assert.deepEqual(render(url, undefined, {}), ANTHROPIC_404, url)
    }
  })

  test('answers in Anthropic shape wherever the request carries anthropic-version', () => {
    assert.deepEqual(
      render('/v1/models/x', undefined, { 'anthropic-version': '2023-06-01' }),
      ANTHROPIC_404,
    )
    assert.deepEqual(
      render(
        '/v1/nowhere?x=1',
        { openAiCode: 'unknown_url' },
        { 'anthropic-version': '2023-06-01' },
      ),
      ANTHROPIC_404,
    )
  })

  test('answers everything else in OpenAI shape with the param and code', () => {
    assert.deepEqual(render('/v1/messagesx', { param: 'model', openAiCode: 'unknown_url' }, {}), {
      error: {
        message: 'nope',
        type: 'invalid_request_error',
        param: 'model',
        code: 'unknown_url',
      },
    })
  })
})
