import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createWeightedRoundRobinPicker,
  weightedRoundRobinPicker,
} from '../../../../src/balancer/pickers/weighted-round-robin.ts'
import { makeEndpoints, sequence, snapshot } from '../../../conformance/picker-fixtures.ts'

const letters = (ids: string) => ids.replace(/e0/g, 'a').replace(/e1/g, 'b').replace(/e2/g, 'c')

describe('weighted-round-robin picker', () => {
  it("follows nginx's smooth sequence a a b a c a a for weights 5, 1, 1", () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([5, 1, 1])
    assert.equal(letters(sequence(picker, eligible, 14)), 'a a b a c a a a a b a c a a')
  })

  it('interleaves heavy endpoints instead of sending them bursts', () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([2, 1])
    assert.equal(letters(sequence(picker, eligible, 6)), 'a b a a b a')
  })

  it('leaves excluded endpoints out of the round, as nginx does on a retry', () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([5, 1, 1])
    const exclude = new Set(['e0'])
    const ids = Array.from({ length: 4 }, () => picker.pick(eligible, { attempt: 1, exclude })?.id)
    assert.deepEqual(ids, ['e1', 'e2', 'e1', 'e2'])
  })

  it('starts a fresh sequence when the snapshot identity changes', () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([5, 1, 1])
    sequence(picker, eligible, 3)
    assert.equal(letters(sequence(picker, snapshot(eligible), 7)), 'a a b a c a a')
  })

  it('keeps each snapshot’s position while the snapshot is unchanged', () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([5, 1, 1])
    const first = sequence(picker, eligible, 3)
    const rest = sequence(picker, eligible, 4)
    assert.equal(letters(`${first} ${rest}`), 'a a b a c a a')
  })

  it('never picks a zero-weight endpoint while a weighted one is left', () => {
    const picker = createWeightedRoundRobinPicker()
    const eligible = makeEndpoints([0, 1, 2])
    assert.ok(!sequence(picker, eligible, 30).includes('e0'))
    assert.equal(picker.pick(eligible, { attempt: 1, exclude: new Set(['e1', 'e2']) })?.id, 'e0')
  })

  it('accepts no options', () => {
    assert.deepEqual(weightedRoundRobinPicker.optionsSchema.parse({}), {})
    assert.equal(weightedRoundRobinPicker.optionsSchema.safeParse({ step: 1 }).success, false)
  })
})
