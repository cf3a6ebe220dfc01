import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createLeastResponseTimePicker } from '../../../../src/balancer/pickers/least-response-time.ts'
import { createWeightedLeastConnectionsPicker } from '../../../../src/balancer/pickers/weighted-least-connections.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import {
  hold,
  makeEndpoints,
  releaseAll,
  sample,
  seededDeps,
} from '../../../conformance/picker-fixtures.ts'

const RUNS = { seed: 20_250_305, numRuns: 200 } as const

/**
 * The documented cost: latency × (inflight + 1) / weight; an unsampled endpoint costs 0 while idle,
 * else is costed at the best sampled latency among `candidates` (those not excluded).
 */
function documentedCost(endpoint: Endpoint, candidates: readonly Endpoint[]): number {
  if (endpoint.latencySamples === 0 && endpoint.inflight === 0) return 0
  const sampled = candidates.filter((e) => e.latencySamples > 0).map((e) => e.latencyEwmaMs)
  const standIn = sampled.length === 0 ? 1 : Math.min(...sampled)
  const latency = endpoint.latencySamples === 0 ? standIn : endpoint.latencyEwmaMs
  return (latency * (endpoint.inflight + 1)) / endpoint.weight
}

const fleet = fc.array(
  fc.record({
    weight: fc.integer({ min: 1, max: 1000 }),
    load: fc.nat(8),
    latencyMs: fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }),
  }),
  { minLength: 1, maxLength: 8 },
)

describe('least-response-time picker (properties)', () => {
  it('on a retry never explores: it takes the cheapest endpoint not yet tried', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fleet,
        fc.nat(255),
        fc.integer({ min: 1, max: 3 }),
        (seed, specs, mask, attempt) => {
          const clock = createManualClock()
          const picker = createLeastResponseTimePicker(
            { explorationShare: 1 },
            { clock, random: createSeededRandom(seed) },
          )
          const eligible = makeEndpoints(
            specs.map((s) => s.weight),
            'e',
            clock,
          )
          eligible.forEach((e, i) => {
            if (specs[i]!.latencyMs !== undefined) sample(e, specs[i]!.latencyMs!)
          })
          const leases = eligible.flatMap((e, i) => hold(e, specs[i]!.load))
          const exclude = new Set(eligible.filter((_, i) => (mask >> i) & 1).map((e) => e.id))
          const left = eligible.filter((e) => !exclude.has(e.id))
          const picked = picker.pick(eligible, { attempt, exclude })
          if (left.length === 0) assert.equal(picked, undefined)
          else {
            assert.ok(picked !== undefined && left.includes(picked))
            const best = Math.min(...left.map((e) => documentedCost(e, left)))
            const cost = documentedCost(picked, left)
            assert.ok(cost <= best * (1 + 1e-9), `${picked.id} costs ${cost}, the best ${best}`)
          }
          releaseAll(leases)
        },
      ),
      RUNS,
    )
  })

  it('at a cold start orders endpoints unlike weighted-least-connections, as documented', () => {
    // Weights 1 and 3, 1 and 4 in flight: (1 + 1) / 1 = 2 > (4 + 1) / 3, while 1 / 1 < 4 / 3.
    const picker = createLeastResponseTimePicker({ explorationShare: 0 }, seededDeps())
    const eligible = makeEndpoints([1, 3])
    const leases = [...hold(eligible[0]!, 1), ...hold(eligible[1]!, 4)]
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e1')
    assert.equal(createWeightedLeastConnectionsPicker().pick(eligible, { attempt: 0 })?.id, 'e0')
    releaseAll(leases)
  })

  it('at a cold start picks the lowest (inflight + 1) / weight, an idle endpoint first', () => {
    fc.assert(
      fc.property(fleet, (specs) => {
        const clock = createManualClock()
        const picker = createLeastResponseTimePicker(
          { explorationShare: 0 },
          { clock, random: createSeededRandom(1) },
        )
        const eligible = makeEndpoints(
          specs.map((s) => s.weight),
          'e',
          clock,
        )
        // Held, never ended: nothing is sampled anywhere.
        const leases = eligible.flatMap((e, i) => hold(e, specs[i]!.load))
        const picked = picker.pick(eligible, { attempt: 0 })!
        const key = (e: Endpoint) => (e.inflight === 0 ? 0 : (e.inflight + 1) / e.weight)
        assert.equal(key(picked), Math.min(...eligible.map(key)))
        releaseAll(leases)
      }),
      RUNS,
    )
  })
})
