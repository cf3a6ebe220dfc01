import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Picker } from '../../../../src/balancer/picker.ts'
import { createWeightedLeastConnectionsPicker } from '../../../../src/balancer/pickers/weighted-least-connections.ts'
import { createWeightedRoundRobinPicker } from '../../../../src/balancer/pickers/weighted-round-robin.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import {
  hold,
  makeEndpoints,
  pickExcluding,
  releaseAll,
} from '../../../conformance/picker-fixtures.ts'

// Small weights keep a cycle (their sum) short; the arithmetic is the same at 1000.
const weights = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 })
const RUNS = { seed: 20_250_303, numRuns: 150 } as const

/** Picks one full cycle (the total weight of `among`), ending each request at once. */
function cycleCounts(
  picker: Picker,
  eligible: readonly Endpoint[],
  among: readonly Endpoint[],
  exclude?: ReadonlySet<string>,
): Map<Endpoint, number> {
  const total = among.reduce((sum, e) => sum + e.weight, 0)
  const counts = new Map<Endpoint, number>()
  for (let i = 0; i < total; i++) {
    const picked = picker.pick(eligible, { attempt: exclude ? 1 : 0, exclude })!
    counts.set(picked, (counts.get(picked) ?? 0) + 1)
    releaseAll(hold(picked, 1))
  }
  return counts
}

function assertExactShares(counts: Map<Endpoint, number>, among: readonly Endpoint[]): void {
  for (const endpoint of counts.keys()) assert.ok(among.includes(endpoint), `picked ${endpoint.id}`)
  for (const endpoint of among) {
    assert.equal(counts.get(endpoint) ?? 0, endpoint.weight, `${endpoint.id}'s picks in a cycle`)
  }
}

const factories = [
  ['weighted-round-robin', createWeightedRoundRobinPicker],
  ['weighted-least-connections (idle fleet)', createWeightedLeastConnectionsPicker],
] as const

for (const [name, create] of factories) {
  describe(`${name} (properties)`, () => {
    it('gives every endpoint exactly its weight in each cycle of total-weight picks', () => {
      fc.assert(
        fc.property(weights, fc.integer({ min: 1, max: 3 }), (ws, cycles) => {
          const picker = create()
          const eligible = makeEndpoints(ws)
          for (let c = 0; c < cycles; c++) {
            assertExactShares(cycleCounts(picker, eligible, eligible), eligible)
          }
        }),
        RUNS,
      )
    })

    it('with the same endpoints excluded throughout, shares the cycle exactly among the rest', () => {
      fc.assert(
        fc.property(weights, fc.integer({ min: 1, max: 255 }), (ws, mask) => {
          const picker = create()
          const eligible = makeEndpoints(ws)
          const rest = eligible.filter((_, i) => (mask >> i) & 1)
          fc.pre(rest.length > 0)
          const exclude = new Set(eligible.filter((e) => !rest.includes(e)).map((e) => e.id))
          assertExactShares(cycleCounts(picker, eligible, rest, exclude), rest)
        }),
        RUNS,
      )
    })
  })
}

describe('weighted-least-connections (properties)', () => {
  it('always picks an endpoint with the lowest in-flight per weight among those not excluded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ weight: fc.integer({ min: 1, max: 1000 }), load: fc.nat(20) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.record({ exclude: fc.nat(255), hold: fc.boolean() }), { maxLength: 30 }),
        (specs, steps) => {
          const picker = createWeightedLeastConnectionsPicker()
          const eligible = makeEndpoints(specs.map((s) => s.weight))
          const leases = eligible.flatMap((e, i) => hold(e, specs[i]!.load))
          pickExcluding(picker, eligible, steps, leases, (picked, left) => {
            // nginx's comparison, in integers: no endpoint left is strictly less loaded.
            for (const other of left) {
              assert.ok(
                !(other.inflight * picked.weight < picked.inflight * other.weight),
                `${picked.id} (${picked.inflight}/${picked.weight}) over ${other.id} (${other.inflight}/${other.weight})`,
              )
            }
          })
          releaseAll(leases)
        },
      ),
      RUNS,
    )
  })
})
