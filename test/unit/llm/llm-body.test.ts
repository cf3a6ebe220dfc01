import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { llmApiFor, parseLlmBody } from '../../../src/llm/llm-body.ts'

describe('LLM request bodies', () => {
  test('maps each supported path to its API, POST only', () => {
    assert.equal(llmApiFor('POST', '/v1/chat/completions'), 'openai.chat')
    assert.equal(llmApiFor('POST', '/v1/completions'), 'openai.completions')
    assert.equal(llmApiFor('POST', '/v1/responses'), 'openai.responses')
    assert.equal(llmApiFor('POST', '/v1/embeddings'), 'openai.embeddings')
    assert.equal(llmApiFor('POST', '/v1/messages'), 'anthropic.messages')
    assert.equal(llmApiFor('GET', '/v1/chat/completions'), undefined)
    assert.equal(llmApiFor('POST', '/v1/unknown'), undefined)
  })

  test('flattens every chat message with its role, not just the first', () => {
    const parsed = parseLlmBody('openai.chat', {
      model: 'm',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: [{ type: 'text', text: 'U1' }] },
        { role: 'assistant', content: 'A' },
      ],
      max_tokens: 7,
      stream: true,
    })
    assert.deepEqual(parsed, {
      ok: true,
      value: {
        model: 'm',
        stream: true,
        maxTokens: 7,
        promptText: '<|system|>\nS\n<|user|>\nU1\n<|assistant|>\nA\n',
      },
    })
  })

  test('puts the Anthropic system prompt and Responses instructions first, like a chat template', () => {
    const anthropic = parseLlmBody('anthropic.messages', {
      model: 'c',
      max_tokens: 5,
      system: [{ type: 'text', text: 'Sys' }],
      messages: [{ role: 'user', content: 'Q' }],
    })
    assert.ok(anthropic.ok && anthropic.value.promptText === '<|system|>\nSys\n<|user|>\nQ\n')
    const responses = parseLlmBody('openai.responses', {
      model: 'r',
      input: 'Q',
      instructions: 'Sys',
      max_output_tokens: 9,
    })
    assert.ok(responses.ok && responses.value.promptText === '<|system|>\nSys\n<|user|>\nQ\n')
    assert.ok(responses.ok && responses.value.maxTokens === 9)
  })

  test('treats embeddings as generating nothing', () => {
    const parsed = parseLlmBody('openai.embeddings', { model: 'e', input: ['a', 'b'] })
    assert.ok(parsed.ok && parsed.value.maxTokens === 0 && parsed.value.promptText === 'a\nb')
  })

  test('names the bad parameter: missing model, missing messages, bad max_tokens, Anthropic max_tokens', () => {
    const cases: Array<[Parameters<typeof parseLlmBody>, string]> = [
      [['openai.chat', { messages: [] }], 'model'],
      [['openai.chat', { model: 'm' }], 'messages'],
      [['openai.chat', { model: 'm', messages: [], max_tokens: -1 }], 'max_tokens'],
      [['openai.completions', { model: 'm' }], 'prompt'],
      [['anthropic.messages', { model: 'm', messages: [] }], 'max_tokens'],
    ]
    for (const [args, param] of cases) {
      const parsed = parseLlmBody(...args)
      assert.equal(parsed.ok, false)
      assert.equal(!parsed.ok && parsed.param, param)
    }
    assert.equal(parseLlmBody('openai.chat', [1, 2]).ok, false)
  })
})
