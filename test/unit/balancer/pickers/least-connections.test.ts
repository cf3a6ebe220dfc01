import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLeastConnectionsPicker } from '../../../../src/balancer/pickers/least-connections.ts'
import { hold, makeEndpoints, sequence } from '../../../conformance/picker-fixtures.ts'

describe('least-connections picker', () => {
  it('picks the endpoint with the fewest requests in flight', () => {
    const picker = createLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 1, 1, 1])
    hold(eligible[0]!, 3)
    hold(eligible[1]!, 1)
    hold(eligible[2]!, 2)
    hold(eligible[3]!, 4)
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e1')
  })

  it('takes turns among equally loaded endpoints', () => {
    const picker = createLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 1, 1, 1])
    assert.equal(sequence(picker, eligible, 8), 'e0 e1 e2 e3 e0 e1 e2 e3')
    hold(eligible[1]!, 1)
    assert.equal(sequence(picker, eligible, 6), 'e0 e2 e3 e0 e2 e3')
  })

  it('ignores weights', () => {
    const picker = createLeastConnectionsPicker()
    const eligible = makeEndpoints([10, 1])
    hold(eligible[0]!, 2)
    hold(eligible[1]!, 1)
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e1')
  })

  it('skips an excluded endpoint even when it is the least loaded', () => {
    const picker = createLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 1, 1])
    hold(eligible[1]!, 5)
    hold(eligible[2]!, 2)
    assert.equal(picker.pick(eligible, { attempt: 1, exclude: new Set(['e0']) })?.id, 'e2')
  })

  it('fills held requests evenly', () => {
    const picker = createLeastConnectionsPicker()
    const eligible = makeEndpoints([1, 1, 1])
    for (let i = 0; i < 30; i++) picker.pick(eligible, { attempt: 0 })!.begin()
    assert.deepEqual(
      eligible.map((e) => e.inflight),
      [10, 10, 10],
    )
  })
})
