import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createConsistentHashPicker } from '../../../../src/balancer/pickers/consistent-hash.ts'
import { buildHashRing } from '../../../../src/balancer/pickers/hash-ring.ts'
import type { HashTable } from '../../../../src/balancer/pickers/hash-table.ts'
import { createIpHashPicker } from '../../../../src/balancer/pickers/ip-hash.ts'
import { buildMaglevTable } from '../../../../src/balancer/pickers/maglev-table.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { hashKey32 } from '../../../../src/util/hash.ts'
import {
  hold,
  ipFor,
  makeEndpoints,
  releaseAll,
  seededDeps,
  snapshot,
} from '../../../conformance/picker-fixtures.ts'

const KEYS = 4_000
const RUNS = { seed: 20_250_306, numRuns: 40 } as const
// Ring weights stay small so every ring is under MAX_RING_POINTS: a scaled ring moves more.
const ringWeights = fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 2, maxLength: 10 })
const maglevWeights = fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 2, maxLength: 10 })

const owner = (table: HashTable, keyHash: number): Endpoint =>
  table.members[table.owners[table.locate(keyHash)]!]!

const keyHashes = Array.from({ length: KEYS }, (_, i) => hashKey32(`key-${i}`))

interface Change {
  /** Share of keys whose endpoint changed. */
  readonly moved: number
  /** Share of keys on endpoints in both snapshots that moved to another such endpoint. */
  readonly strayed: number
}

function change(before: HashTable, after: HashTable, gone: Endpoint): Change {
  let moved = 0
  let onKept = 0
  let strayed = 0
  for (const h of keyHashes) {
    const a = owner(before, h)
    const b = owner(after, h)
    if (a !== b) moved++
    if (a !== gone) {
      onKept++
      if (a !== b && b !== gone) strayed++
    }
  }
  return { moved: moved / KEYS, strayed: onKept === 0 ? 0 : strayed / onKept }
}

/** A pool and the snapshot without one of its members, with that member's share of the weight. */
const membershipChange = (weights: fc.Arbitrary<number[]>) =>
  weights.chain((ws) =>
    fc.record({ ws: fc.constant(ws), removed: fc.nat(ws.length - 1) }).map(({ removed }) => {
      const pool = makeEndpoints(ws)
      const without = snapshot(pool.filter((_, i) => i !== removed))
      const total = ws.reduce((a, b) => a + b, 0)
      return { pool, without, gone: pool[removed]!, share: ws[removed]! / total }
    }),
  )

const builders = [
  ['ring', (eligible: readonly Endpoint[]) => buildHashRing(eligible, 64), ringWeights],
  ['maglev', (eligible: readonly Endpoint[]) => buildMaglevTable(eligible, 65_537), maglevWeights],
] as const

for (const [algorithm, build, weights] of builders) {
  describe(`${algorithm}: membership change (properties)`, () => {
    it('removing or adding one endpoint moves about its weight share of keys, and few others', () => {
      fc.assert(
        fc.property(membershipChange(weights), ({ pool, without, gone, share }) => {
          const full = build(pool)
          const less = build(without)
          for (const [before, after] of [
            [full, less],
            [less, full],
          ] as const) {
            const { moved, strayed } = change(before, after, gone)
            // Sampling error on 4,000 keys plus the table's own imbalance.
            assert.ok(
              Math.abs(moved - share) <= 0.03 + share * 0.25,
              `${gone.id} of ${pool.length}: moved ${moved.toFixed(4)}, its share ${share.toFixed(4)}`,
            )
            // A ring moves only the arcs that change hands; Maglev a little more.
            assert.ok(strayed <= (algorithm === 'ring' ? 0 : 0.02), `strayed ${strayed}`)
          }
        }),
        RUNS,
      )
    })

    it('gives each endpoint a share of keys in proportion to its weight', () => {
      fc.assert(
        fc.property(weights, (ws) => {
          const eligible = makeEndpoints(ws)
          const table = build(eligible)
          const positions = new Map<Endpoint, number>()
          // Shares of the table (Maglev slots) or of the ring's circle.
          const total = ws.reduce((a, b) => a + b, 0)
          if (algorithm === 'maglev') {
            for (const o of table.owners) {
              const e = table.members[o]!
              positions.set(e, (positions.get(e) ?? 0) + 1)
            }
            for (const e of eligible) {
              const expected = (table.owners.length * e.weight) / total
              const got = positions.get(e) ?? 0
              // Envoy's weighted turns round each endpoint's slots by at most a turn or two.
              assert.ok(
                Math.abs(got - expected) <= Math.max(2, expected * 0.01),
                `${e.id}: ${got} slots, expected ${expected.toFixed(1)}`,
              )
            }
          } else {
            const counts = new Map<Endpoint, number>()
            for (const h of keyHashes)
              counts.set(owner(table, h), (counts.get(owner(table, h)) ?? 0) + 1)
            for (const e of eligible) {
              const expected = e.weight / total
              const got = (counts.get(e) ?? 0) / KEYS
              // 64 points per weight: about 1/sqrt(64 w) relative error, plus sampling.
              assert.ok(
                Math.abs(got - expected) <= 0.03 + (expected * 0.5) / Math.sqrt(e.weight),
                `${e.id}: ${got}, expected ${expected}`,
              )
            }
          }
        }),
        RUNS,
      )
    })
  })
}

describe('consistent-hash retries and bounded load (properties)', () => {
  it('ring: a retry goes exactly where the key would go if the endpoints tried were removed', () => {
    fc.assert(
      fc.property(
        ringWeights,
        fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 30 }),
        fc.nat(1023),
        (ws, keys, mask) => {
          const picker = createConsistentHashPicker(
            { algorithm: 'ring', tableSize: 3, vnodesPerWeight: 64, boundedLoadFactor: 0 },
            seededDeps(),
          )
          const eligible = makeEndpoints(ws)
          const exclude = new Set(eligible.filter((_, i) => (mask >> i) & 1).map((e) => e.id))
          const rest = snapshot(eligible.filter((e) => !exclude.has(e.id)))
          for (const key of keys) {
            assert.equal(
              picker.pick(eligible, { attempt: 1, hashKey: key, exclude }),
              picker.pick(rest, { attempt: 0, hashKey: key }),
            )
          }
        },
      ),
      RUNS,
    )
  })

  for (const algorithm of ['maglev', 'ring'] as const) {
    it(`${algorithm}: with bounded load, a key lands on the first endpoint along its walk that has room`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.record({ weight: fc.integer({ min: 1, max: 20 }), load: fc.nat(30) }), {
            minLength: 1,
            maxLength: 6,
          }),
          fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 20 }),
          fc.constantFrom(1, 1.25, 2),
          (specs, keys, factor) => {
            const options = {
              algorithm,
              tableSize: 1009,
              vnodesPerWeight: 16,
              boundedLoadFactor: factor,
            }
            const picker = createConsistentHashPicker(options, seededDeps())
            const unbounded = createConsistentHashPicker(
              { ...options, boundedLoadFactor: 0 },
              seededDeps(),
            )
            const eligible = makeEndpoints(specs.map((s) => s.weight))
            const leases = eligible.flatMap((e, i) => hold(e, specs[i]!.load))
            const total = eligible.reduce((sum, e) => sum + e.inflight, 0)
            const weight = eligible.reduce((sum, e) => sum + e.weight, 0)
            const hasRoom = (e: Endpoint) =>
              e.inflight + 1 <= Math.ceil((factor * (total + 1) * e.weight) / weight - 1e-9)
            for (const key of keys) {
              const picked = picker.pick(eligible, { attempt: 0, hashKey: key })!
              assert.ok(hasRoom(picked), `${picked.id} is over its cap`)
              // Its walk: the unbounded picker's choices with every earlier endpoint excluded.
              const tried = new Set<string>()
              for (;;) {
                const next = unbounded.pick(eligible, { attempt: 1, hashKey: key, exclude: tried })!
                if (hasRoom(next)) {
                  assert.equal(picked, next)
                  break
                }
                tried.add(next.id)
              }
            }
            releaseAll(leases)
          },
        ),
        RUNS,
      )
    })
  }
})

describe('ip-hash addresses (property)', () => {
  it('sends an IPv4 client and its IPv4-mapped IPv6 form to the same endpoint', () => {
    const picker = createIpHashPicker(
      { algorithm: 'maglev', tableSize: 65_537, vnodesPerWeight: 160, boundedLoadFactor: 0 },
      seededDeps(),
    )
    const eligible = makeEndpoints([3, 1, 4, 1, 5])
    fc.assert(
      fc.property(fc.nat(0xffffffff), (n) => {
        const ip = ipFor(n >>> 8).replace(/^10\./, `${n & 255}.`)
        assert.equal(
          picker.pick(eligible, { attempt: 0, clientIp: `::ffff:${ip}` }),
          picker.pick(eligible, { attempt: 0, clientIp: ip }),
        )
      }),
      { seed: 20_250_307, numRuns: 500 },
    )
  })
})
