import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  chatChunk,
  completionChunk,
  createTokenEventFormatter,
  sseData,
} from '../../../src/sim/openai-response.ts'

const identity = { id: 'chatcmpl-1', created: 1_700_000_000, model: 'meta-llama/"x"' }

describe('sim openai response', () => {
  it('formats token events byte-identically to the generic chunk builders', () => {
    const continuousUsage = { promptTokens: 9 }
    for (const o of [
      { includeUsage: false },
      { includeUsage: true },
      { includeUsage: true, continuousUsage },
    ]) {
      const chat = createTokenEventFormatter(identity, 'chat', o)
      const completion = createTokenEventFormatter(identity, 'completions', o)
      for (const [n, text] of [' word', 'quote"s', '\n', ''].entries()) {
        assert.equal(chat(text, n), sseData(chatChunk(identity, { content: text }, null, o, n)))
        assert.equal(completion(text, n), sseData(completionChunk(identity, text, null, o, n)))
      }
    }
  })

  it('puts the usage so far on a chunk only with continuous usage included', () => {
    const usageOf = (o: Parameters<typeof chatChunk>[3]) =>
      (chatChunk(identity, {}, null, o, 2) as { usage?: unknown }).usage
    const continuousUsage = { promptTokens: 9 }
    assert.equal(usageOf({ includeUsage: false, continuousUsage }), undefined)
    assert.equal(usageOf({ includeUsage: true }), null)
    assert.deepEqual(usageOf({ includeUsage: true, continuousUsage }), {
      prompt_tokens: 9,
      total_tokens: 11,
      completion_tokens: 2,
    })
  })
})
