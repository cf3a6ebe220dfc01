import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { streamErrorMessage } from '../../../src/llm/stream-error-message.ts'

describe('streamErrorMessage', () => {
  test('reads the message of each API’s error event', () => {
    for (const [event, message] of [
      // OpenAI and vLLM chunks.
      [
        { error: { message: 'engine dead', type: 'InternalServerError', code: 500 } },
        'engine dead',
      ],
      // Anthropic's `event: error`.
      [{ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'Overloaded'],
      // The Responses API's `response.failed` and `error`.
      [
        {
          type: 'response.failed',
          response: { status: 'failed', error: { code: 'server_error', message: 'failed' } },
        },
        'failed',
      ],
      [{ type: 'error', code: 'server_error', message: 'went wrong', param: null }, 'went wrong'],
      // A bare string error.
      [{ error: 'plain words' }, 'plain words'],
    ] as const) {
      assert.equal(streamErrorMessage(JSON.stringify(event)), message, JSON.stringify(event))
    }
  })

  test('is undefined for an error event without a message', () => {
    for (const event of [
      { type: 'response.failed', response: { status: 'failed' } },
      { error: { code: 500 } },
      { error: { message: 42 } },
    ]) {
      assert.equal(streamErrorMessage(JSON.stringify(event)), undefined, JSON.stringify(event))
    }
    assert.equal(streamErrorMessage('[1, 2]'), undefined)
    assert.equal(streamErrorMessage('null'), undefined)
  })

  test('reads the first whole message string from a head cut short of valid JSON', () => {
    const head = `{"error":{"message":"out of \\"memory\\"","detail":"${'x'.repeat(100)}`
    assert.equal(streamErrorMessage(head), 'out of "memory"')
    // The message itself cut short: nothing whole to read.
    assert.equal(streamErrorMessage('{"error":{"message":"out of mem'), undefined)
  })
})
