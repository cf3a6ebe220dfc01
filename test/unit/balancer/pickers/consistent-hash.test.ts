import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PickContext, Picker } from '../../../../src/balancer/picker.ts'
import {
  consistentHashOptionsSchema,
  createConsistentHashPicker,
} from '../../../../src/balancer/pickers/consistent-hash.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { makeEndpoints, seededDeps, snapshot } from '../../../conformance/picker-fixtures.ts'

const create = (options: Record<string, unknown> = {}, seed = 1): Picker =>
  createConsistentHashPicker(consistentHashOptionsSchema.parse(options), seededDeps(seed))

const keyed = (hashKey: string): PickContext => ({ attempt: 0, hashKey })

/** Picks `count` times for one key, holding every lease, and checks each pick against its cap. */
function hammer(
  picker: Picker,
  eligible: readonly Endpoint[],
  key: string,
  count: number,
  factor: number,
) {
  const totalWeight = eligible.reduce((sum, e) => sum + e.weight, 0)
  const picked: string[] = []
  for (let i = 0; i < count; i++) {
    const totalInflight = eligible.reduce((sum, e) => sum + e.inflight, 0)
    const endpoint = picker.pick(eligible, keyed(key))!
    if (factor > 0) {
      const cap = Math.ceil((factor * (totalInflight + 1) * endpoint.weight) / totalWeight)
      assert.ok(endpoint.inflight + 1 <= cap, `${endpoint.id} over its cap ${cap} at pick ${i}`)
    }
    endpoint.begin()
    picked.push(endpoint.id)
  }
  return picked
}

function keyHomedOn(picker: Picker, eligible: readonly Endpoint[], id: string): string {
  for (let i = 0; ; i++) if (picker.pick(eligible, keyed(`k${i}`))?.id === id) return `k${i}`
}

describe('consistent-hash picker', () => {
  for (const algorithm of ['maglev', 'ring'] as const) {
    it(`${algorithm}: caps a hot key's endpoint at its bounded-load share and spills the rest`, () => {
      const picker = create({ algorithm })
      const eligible = makeEndpoints([1, 1, 1, 1])
      const home = picker.pick(eligible, keyed('hot'))!
      hammer(picker, eligible, 'hot', 100, 1.25)
      // The last pick saw 99 in flight: cap = ceil(1.25 × 100 / 4) = 32.
      assert.ok(home.inflight >= 31 && home.inflight <= 32, `home holds ${home.inflight}`)
      for (const endpoint of eligible)
        assert.ok(endpoint.inflight <= 32, `${endpoint.id}: ${endpoint.inflight}`)
      assert.ok(
        eligible.every((e) => e.inflight > 0),
        'the spill reaches every endpoint',
      )
    })
  }

  it('scales the cap with weight', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 3])
    const key = keyHomedOn(picker, eligible, 'e0')
    hammer(picker, eligible, key, 40, 1.25)
    // Light endpoint: ceil(1.25 × 40 × 1/4) = 13 at the last pick.
    assert.ok(
      eligible[0]!.inflight >= 12 && eligible[0]!.inflight <= 13,
      `light holds ${eligible[0]!.inflight}`,
    )
  })

  it('spills a hot key the same way in every instance', () => {
    const a = hammer(create({}, 1), makeEndpoints([1, 1, 1, 1, 1]), 'hot', 60, 1.25)
    const b = hammer(create({}, 2), makeEndpoints([1, 1, 1, 1, 1]), 'hot', 60, 1.25)
    assert.deepEqual(a, b)
  })

  it('keeps a hot key on its endpoint when bounded load is off', () => {
    const picker = create({ boundedLoadFactor: 0 })
    const eligible = makeEndpoints([1, 1, 1, 1])
    const picked = new Set(hammer(picker, eligible, 'hot', 100, 0))
    assert.equal(picked.size, 1)
  })

  it('on a retry walks past the excluded endpoint to the same place every time', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1, 1])
    for (let i = 0; i < 200; i++) {
      const home = picker.pick(eligible, keyed(`k${i}`))!
      const retry = { attempt: 1, hashKey: `k${i}`, exclude: new Set([home.id]) }
      const next = picker.pick(eligible, retry)
      assert.ok(next !== undefined && next !== home)
      assert.equal(picker.pick(eligible, retry), next)
    }
  })

  it('ring: a retry goes where the key would go if its endpoint were removed', () => {
    const picker = create({ algorithm: 'ring', boundedLoadFactor: 0 })
    const eligible = makeEndpoints([1, 2, 1, 3, 1])
    for (let i = 0; i < 500; i++) {
      const home = picker.pick(eligible, keyed(`k${i}`))!
      const retry = picker.pick(eligible, {
        attempt: 1,
        hashKey: `k${i}`,
        exclude: new Set([home.id]),
      })
      const without = snapshot(eligible.filter((e) => e !== home))
      assert.equal(retry, picker.pick(without, keyed(`k${i}`)))
    }
  })

  it('has documented defaults', () => {
    assert.deepEqual(consistentHashOptionsSchema.parse({}), {
      algorithm: 'maglev',
      tableSize: 65_537,
      vnodesPerWeight: 160,
      boundedLoadFactor: 1.25,
    })
  })

  it('accepts 0 (off) or a factor of at least 1 for boundedLoadFactor', () => {
    for (const boundedLoadFactor of [0, 1, 1.25, 3]) {
      assert.equal(consistentHashOptionsSchema.safeParse({ boundedLoadFactor }).success, true)
    }
    for (const boundedLoadFactor of [0.5, 0.99, -1, Number.POSITIVE_INFINITY, '1.25']) {
      const result = consistentHashOptionsSchema.safeParse({ boundedLoadFactor })
      assert.equal(result.success, false, String(boundedLoadFactor))
    }
  })

  it('rejects a non-prime table size, an unknown algorithm and unknown options', () => {
    for (const bad of [
      { tableSize: 65_536 },
      { tableSize: 1 },
      { tableSize: 10_000_019 },
      { algorithm: 'rendezvous' },
      { vnodesPerWeight: 0 },
      { replicas: 3 },
    ]) {
      assert.equal(consistentHashOptionsSchema.safeParse(bad).success, false, JSON.stringify(bad))
    }
    assert.equal(consistentHashOptionsSchema.parse({ tableSize: 251 }).tableSize, 251)
  })
})
