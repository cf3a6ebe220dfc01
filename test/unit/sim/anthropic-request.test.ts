import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isAnthropicError, parseAnthropicRequest } from '../../../src/sim/anthropic-request.ts'
import { parseOpenAiRequest } from '../../../src/sim/openai-request.ts'

describe('parseAnthropicRequest', () => {
  test('flattens system and content blocks as the chat request with the same turns', () => {
    const anthropic = parseAnthropicRequest({
      model: 'm',
      max_tokens: 9,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'one two' }] },
        { role: 'assistant', content: 'three' },
      ],
      stream: true,
    })
    const chat = parseOpenAiRequest('chat', {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'one two' },
        { role: 'assistant', content: 'three' },
      ],
    })
    assert.ok(!isAnthropicError(anthropic) && 'prompt' in chat)
    assert.deepEqual(anthropic.prompt, chat.prompt)
    assert.equal(anthropic.api, 'messages')
    assert.equal(anthropic.maxTokens, 9)
    assert.equal(anthropic.isStream, true)
    assert.equal(anthropic.includeUsage, true)
  })

  test('requires model, max_tokens and user or assistant turns', () => {
    const messages = [{ role: 'user', content: 'hi' }]
    for (const [body, field] of [
      [{ max_tokens: 1, messages }, /model/],
      [{ model: 'm', max_tokens: 0, messages }, /max_tokens/],
      [{ model: 'm', max_tokens: 1.5, messages }, /max_tokens/],
      [{ model: 'm', max_tokens: 1, messages: [{ role: 'tool', content: 'x' }] }, /role/],
      [{ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 3 }] }, /content/],
      [{ model: 'm', max_tokens: 1, messages, stream: 'yes' }, /stream/],
      [[], /JSON object/],
    ] as const) {
      const parsed = parseAnthropicRequest(body)
      assert.ok(isAnthropicError(parsed), JSON.stringify(body))
      assert.match(parsed.message, field)
    }
  })
})
