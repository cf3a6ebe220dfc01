import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { tokenIdListsText, tokenIdsText } from '../../../src/llm/token-ids-text.ts'
import { createSeededRandom } from '../../../src/util/random.ts'

/** The format, written the plain way: four base-36 digits an id, braces past 36^4. */
const reference = (ids: readonly number[]): string =>
  ids
    .map((id) => (id < 36 ** 4 ? id.toString(36).padStart(4, '0') : `{${id.toString(36)}}`))
    .join('')

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

  test('writes every id of a long mixed prompt exactly as the format says', () => {
    const random = createSeededRandom(3)
    const ids = Array.from({ length: 20_000 }, (_, i) =>
      i % 997 === 0
        ? 36 ** 4 + Math.floor(random() * 2 ** 40)
        : Math.floor(random() * (i % 2 ? 36 ** 4 : 200_000)),
    )
    ids.push(36 ** 4 - 1, 0, Number.MAX_SAFE_INTEGER)
    assert.equal(tokenIdsText(ids), reference(ids))
    assert.equal(tokenIdsText([]), '')
  })

  test('writes a batch of prompts one per line, empty prompts included', () => {
    const lists = [[1, 2], [], [36 ** 4, 35], [7]]
    assert.equal(tokenIdListsText(lists), lists.map(reference).join('\n'))
    assert.equal(tokenIdListsText([]), '')
    assert.equal(tokenIdListsText([[]]), '')
  })
})
