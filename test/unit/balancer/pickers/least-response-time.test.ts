import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import {
  createLeastResponseTimePicker,
  leastResponseTimeOptionsSchema,
} from '../../../../src/balancer/pickers/least-response-time.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import {
  countPicks,
  hold,
  makeEndpoints,
  sample,
  seededDeps,
} from '../../../conformance/picker-fixtures.ts'

const create = (explorationShare: number, seed = 1): Picker =>
  createLeastResponseTimePicker({ explorationShare }, seededDeps(seed))

function sampled(
  latenciesMs: readonly number[],
  weights = latenciesMs.map(() => 1),
): readonly Endpoint[] {
  const eligible = makeEndpoints(weights)
  latenciesMs.forEach((latencyMs, i) => {
    sample(eligible[i]!, latencyMs)
  })
  return eligible
}

describe('least-response-time picker', () => {
  it('prefers the endpoint with the lowest latency', () => {
    const eligible = sampled([50, 10, 30])
    assert.deepEqual([...countPicks(create(0), eligible, 100)], [['e1', 100]])
  })

  it('charges for the queue the request would join: latency × (inflight + 1)', () => {
    const eligible = sampled([10, 50])
    hold(eligible[0]!, 4) // 10 ms × 5 = 50 ms: a tie
    hold(eligible[0]!, 1) // 10 ms × 6 = 60 ms > 50 ms
    assert.equal(create(0).pick(eligible, { attempt: 0 })?.id, 'e1')
  })

  it('divides the cost by weight', () => {
    const eligible = sampled([20, 10], [4, 1]) // 20 / 4 = 5 < 10 / 1
    assert.equal(create(0).pick(eligible, { attempt: 0 })?.id, 'e0')
  })

  it('probes an endpoint without samples first, one request at a time', () => {
    const picker = create(0)
    const eligible = makeEndpoints([1, 1])
    sample(eligible[0]!, 10)
    const probe = picker.pick(eligible, { attempt: 0 })
    assert.equal(probe?.id, 'e1')
    probe!.begin()
    // Costed at the best sampled latency while its first answer is pending: 10 × 2 > 10 × 1.
    assert.equal(picker.pick(eligible, { attempt: 0 })?.id, 'e0')
  })

  it('still sends a slow endpoint about explorationShare × its weight share of first tries', () => {
    const eligible = sampled([10, 1_000])
    const picks = 40_000
    const slow = (countPicks(create(0.1), eligible, picks).get('e1') ?? 0) / picks
    assert.ok(Math.abs(slow - 0.05) < 0.005, `slow share ${slow}`)
    assert.equal(countPicks(create(0), eligible, 1_000).get('e1'), undefined)
  })

  it('never explores on a retry', () => {
    const eligible = sampled([10, 1_000, 20])
    const counts = countPicks(create(0.5), eligible, 2_000, () => ({
      attempt: 1,
      exclude: new Set(['e0']),
    }))
    assert.deepEqual([...counts], [['e2', 2_000]])
  })

  it('moves traffic back to a once-slow endpoint after exploration finds it fast again', () => {
    const clock = createManualClock()
    const eligible = makeEndpoints([1, 1], 'e', clock)
    const latencyMs = new Map([
      ['e0', 20],
      ['e1', 5],
    ])
    sample(eligible[0]!, 20)
    sample(eligible[1]!, 2_000) // one bad response: peak EWMA jumps to it
    const picker = create(0.05)
    const served = (picks: number) => {
      let fast = 0
      for (let i = 0; i < picks; i++) {
        const endpoint = picker.pick(eligible, { attempt: 0 })!
        clock.advance(100)
        endpoint.begin().end({ ok: true, latencyMs: latencyMs.get(endpoint.id)! })
        if (endpoint.id === 'e1') fast++
      }
      return fast / picks
    }
    // Each exploration sample pulls the peak EWMA toward 5 ms (decay 10 s, a sample every ~4 s).
    assert.ok(served(100) < 0.2)
    served(1_000)
    assert.ok(served(500) > 0.9)
  })

  it('defaults explorationShare to 0.05 and rejects shares outside [0, 1]', () => {
    assert.deepEqual(leastResponseTimeOptionsSchema.parse({}), { explorationShare: 0.05 })
    for (const bad of [
      { explorationShare: -0.1 },
      { explorationShare: 1.5 },
      { exploration: 0.1 },
    ]) {
      assert.equal(
        leastResponseTimeOptionsSchema.safeParse(bad).success,
        false,
        JSON.stringify(bad),
      )
    }
  })
})
