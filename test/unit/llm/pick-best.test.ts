import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pickHighest, pickLowest } from '../../../src/llm/pick-best.ts'
import { createSeededRandom } from '../../../src/util/random.ts'

describe('pick best', () => {
  it('returns the highest or lowest scored item', () => {
    const random = createSeededRandom(1)
    assert.equal(
      pickHighest([3, 9, 4], (x) => x, random),
      9,
    )
    assert.equal(
      pickLowest([3, 9, 4], (x) => x, random),
      3,
    )
    assert.equal(
      pickHighest([], (x: number) => x, random),
      undefined,
    )
  })

  it('never picks a NaN score while a number is left', () => {
    const random = createSeededRandom(1)
    assert.equal(
      pickHighest([Number.NaN, 1, Number.NaN], (x) => x, random),
      1,
    )
  })

  it('breaks ties uniformly at random', () => {
    const random = createSeededRandom(2)
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 8_000; i++) counts[pickHighest([0, 1, 2, 3], () => 1, random)!]!++
    for (const count of counts) assert.ok(Math.abs(count - 2_000) < 150, `${counts}`)
  })
})
