import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRandomPicker, randomPicker } from '../../../../src/balancer/pickers/random.ts'
import { countPicks, makeEndpoints, seededDeps } from '../../../conformance/picker-fixtures.ts'

describe('random picker', () => {
  it('is reproducible with the same seed', () => {
    const eligible = makeEndpoints([1, 2, 3])
    const a = createRandomPicker(seededDeps(7))
    const b = createRandomPicker(seededDeps(7))
    for (let i = 0; i < 200; i++)
      assert.equal(a.pick(eligible, { attempt: 0 }), b.pick(eligible, { attempt: 0 }))
  })

  it('draws among the endpoints left on a retry, still by weight', () => {
    const picker = createRandomPicker(seededDeps())
    const eligible = makeEndpoints([10, 1, 3])
    const counts = countPicks(picker, eligible, 20_000, () => ({
      attempt: 1,
      exclude: new Set(['e0']),
    }))
    assert.equal(counts.get('e0'), undefined)
    const ratio = counts.get('e2')! / counts.get('e1')!
    assert.ok(Math.abs(ratio - 3) < 0.2, `e2/e1 = ${ratio}`)
  })

  it('never draws a zero-weight endpoint unless it is the only one left', () => {
    const picker = createRandomPicker(seededDeps())
    const eligible = makeEndpoints([0, 1])
    assert.equal(countPicks(picker, eligible, 1_000).get('e0'), undefined)
    assert.equal(picker.pick(eligible, { attempt: 1, exclude: new Set(['e1']) })?.id, 'e0')
  })

  it('accepts no options', () => {
    assert.equal(randomPicker.optionsSchema.safeParse({ seed: 1 }).success, false)
  })
})
