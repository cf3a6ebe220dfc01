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
    for (const includeUsage of [false, true]) {
      const o = { includeUsage }
      const chat = createTokenEventFormatter(identity, 'chat', o)
      const completion = createTokenEventFormatter(identity, 'completions', o)
      for (const text of [' word', 'quote"s', '\n', '']) {
        assert.equal(chat(text), sseData(chatChunk(identity, { content: text }, null, o)))
        assert.equal(completion(text), sseData(completionChunk(identity, text, null, o)))
      }
    }
  })
})
