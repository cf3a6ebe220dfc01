import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createLeastConnectionsPicker } from '../../../../src/balancer/pickers/least-connections.ts'
import {
  hold,
  makeEndpoints,
  pickExcluding,
  releaseAll,
} from '../../../conformance/picker-fixtures.ts'

const RUNS = { seed: 20_250_304, numRuns: 300 } as const

describe('least-connections picker (properties)', () => {
  it('always picks an endpoint with the fewest requests in flight among those not excluded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(6), { minLength: 1, maxLength: 8 }),
        fc.array(fc.record({ exclude: fc.nat(255), hold: fc.boolean() }), { maxLength: 30 }),
        (loads, steps) => {
          const picker = createLeastConnectionsPicker()
          const eligible = makeEndpoints(loads.map(() => 1))
          const leases = eligible.flatMap((e, i) => hold(e, loads[i]!))
          pickExcluding(picker, eligible, steps, leases, (picked, left) => {
            assert.equal(picked.inflight, Math.min(...left.map((e) => e.inflight)))
          })
          releaseAll(leases)
        },
      ),
      RUNS,
    )
  })

  it('starves no endpoint: while loads stay put, the k tied for least take one turn each in every k picks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
        fc.nat(20),
        (loads, warmUp) => {
          const picker = createLeastConnectionsPicker()
          const eligible = makeEndpoints(loads.map(() => 1))
          const leases = eligible.flatMap((e, i) => hold(e, loads[i]!))
          // Requests that start and end between picks leave the loads where they were.
          const pickAndEnd = () => {
            const picked = picker.pick(eligible, { attempt: 0 })!
            releaseAll(hold(picked, 1))
            return picked
          }
          for (let i = 0; i < warmUp; i++) pickAndEnd()
          const least = Math.min(...loads)
          const tied = eligible.filter((e) => e.inflight === least)
          for (let round = 0; round < 3; round++) {
            const turns = new Set(Array.from({ length: tied.length }, pickAndEnd))
            assert.deepEqual([...turns].map((e) => e.id).sort(), tied.map((e) => e.id).sort())
          }
          releaseAll(leases)
        },
      ),
      RUNS,
    )
  })
})
