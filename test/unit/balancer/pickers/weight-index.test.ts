import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  buildWeightIndex,
  firstNotExcluded,
  pickByWeight,
  weightOf,
} from '../../../../src/balancer/pickers/weight-index.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'

describe('weight index', () => {
  it('holds prefix sums of the weights', () => {
    const index = buildWeightIndex(makeEndpoints([1, 2, 3]))
    assert.deepEqual([...index.cumulative], [1, 3, 6])
    assert.equal(index.total, 6)
  })

  it('gives non-positive and non-finite weights no share', () => {
    const [zero, negative, nan] = makeEndpoints([0, -3, Number.NaN])
    assert.deepEqual([weightOf(zero!), weightOf(negative!), weightOf(nan!)], [0, 0, 0])
  })

  it('draws uniformly when every candidate weighs zero', () => {
    const eligible = makeEndpoints([0, 0, 0])
    const random = createSeededRandom(3)
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++)
      seen.add(pickByWeight(eligible, buildWeightIndex(eligible), { attempt: 0 }, random)!.id)
    assert.equal(seen.size, 3)
    const retry = { attempt: 1, exclude: new Set(['e0']) }
    for (let i = 0; i < 100; i++)
      assert.notEqual(pickByWeight(eligible, buildWeightIndex(eligible), retry, random)?.id, 'e0')
  })

  it('returns undefined when everything is excluded', () => {
    const eligible = makeEndpoints([1, 2])
    const ctx = { attempt: 1, exclude: new Set(['e0', 'e1']) }
    assert.equal(
      pickByWeight(eligible, buildWeightIndex(eligible), ctx, createSeededRandom(1)),
      undefined,
    )
    assert.equal(firstNotExcluded(eligible, ctx), undefined)
  })
})
