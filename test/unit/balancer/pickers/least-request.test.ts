import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createLeastRequestPicker,
  leastRequestOptionsSchema,
} from '../../../../src/balancer/pickers/least-request.ts'
import {
  countPicks,
  hold,
  makeEndpoints,
  seededDeps,
} from '../../../conformance/picker-fixtures.ts'

const picks = 20_000
const share = (counts: Map<string, number>, id: string) => (counts.get(id) ?? 0) / picks

describe('least-request picker', () => {
  it('prefers the less loaded of two candidates', () => {
    const picker = createLeastRequestPicker({ choiceCount: 2 }, seededDeps())
    const eligible = makeEndpoints([1, 1])
    hold(eligible[0]!, 5)
    // The loaded endpoint wins only when both draws land on it: 1/4 of the time.
    const loaded = share(countPicks(picker, eligible, picks), 'e0')
    assert.ok(Math.abs(loaded - 0.25) < 0.015, `loaded share ${loaded}`)
  })

  it('picks a loaded endpoint only when every one of choiceCount draws lands on it', () => {
    const picker = createLeastRequestPicker({ choiceCount: 4 }, seededDeps())
    const eligible = makeEndpoints([1, 1])
    hold(eligible[0]!, 1)
    const loaded = share(countPicks(picker, eligible, picks), 'e0')
    assert.ok(Math.abs(loaded - 1 / 16) < 0.01, `loaded share ${loaded}`)
  })

  it('compares in-flight requests per unit of weight', () => {
    const picker = createLeastRequestPicker({ choiceCount: 2 }, seededDeps())
    const eligible = makeEndpoints([4, 1])
    hold(eligible[0]!, 4) // 1 per unit of weight
    hold(eligible[1]!, 2) // 2 per unit of weight
    // e1 is drawn with probability 1/5 and wins only when both draws are e1.
    const light = share(countPicks(picker, eligible, picks), 'e1')
    assert.ok(Math.abs(light - 0.04) < 0.01, `light share ${light}`)
  })

  it('keeps the first draw on a tie, so an idle fleet is loaded by weight', () => {
    const picker = createLeastRequestPicker({ choiceCount: 2 }, seededDeps())
    const eligible = makeEndpoints([3, 1])
    const heavy = share(countPicks(picker, eligible, picks), 'e0')
    assert.ok(Math.abs(heavy - 0.75) < 0.015, `heavy share ${heavy}`)
  })

  it('draws only among the endpoints left on a retry', () => {
    const picker = createLeastRequestPicker({ choiceCount: 2 }, seededDeps())
    const eligible = makeEndpoints([1, 1, 1])
    hold(eligible[2]!, 3)
    const counts = countPicks(picker, eligible, 1_000, () => ({
      attempt: 1,
      exclude: new Set(['e0', 'e1']),
    }))
    assert.deepEqual([...counts], [['e2', 1_000]])
  })

  it('defaults to two choices and rejects fewer, fractions and unknown options', () => {
    assert.deepEqual(leastRequestOptionsSchema.parse({}), { choiceCount: 2 })
    assert.deepEqual(leastRequestOptionsSchema.parse({ choiceCount: 3 }), { choiceCount: 3 })
    for (const bad of [
      { choiceCount: 1 },
      { choiceCount: 2.5 },
      { choiceCount: 17 },
      { choices: 2 },
    ]) {
      assert.equal(leastRequestOptionsSchema.safeParse(bad).success, false, JSON.stringify(bad))
    }
  })
})
