import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { tokenIdsText } from '../../../src/llm/token-ids-text.ts'

describe('token ids as text', () => {
  test('writes four base-36 digits per id, so 16 tokens fill one 64-character block', () => {
    const ids = Array.from({ length: 16 }, (_, i) => 128_000 + i)
    assert.equal(tokenIdsText(ids).length, 64)
    assert.equal(tokenIdsText([0, 35, 36]), '0000000z0010')
  })

  test('keeps ids past 36^4 distinct and decodable', () => {
    assert.equal(tokenIdsText([36 ** 4]), '{10000}')
    assert.notEqual(tokenIdsText([36 ** 4]), tokenIdsText([1, 0]))
  })
})
