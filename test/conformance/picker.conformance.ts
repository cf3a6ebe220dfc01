import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { PickContext, Picker } from '../../src/balancer/picker.ts'
import type { PickerDefinition } from '../../src/balancer/picker-definition.ts'
import type { Endpoint, Lease } from '../../src/upstream/endpoint.ts'
import {
  countPicks,
  createFromDefinition,
  ipFor,
  makeEndpoints,
  seededDeps,
  snapshot,
} from './picker-fixtures.ts'

export interface PickerConformanceOptions {
  /** Shares follow weights (true), or are equal whatever the weights (false). */
  readonly weighted: boolean
  /** The request field the policy hashes, if any. */
  readonly hashed: 'key' | 'ip' | undefined
  /** Picks from an idle fleet (nothing in flight) follow the shares too. Default true. */
  readonly idleProportional?: boolean
  /** Balances in-flight load (the least-* family). Default false. */
  readonly loadAware?: boolean
  /** `policyOptions`, parsed through the definition's schema. Default `{}`. */
  readonly policyOptions?: Readonly<Record<string, unknown>>
  /**
   * Share tolerance under sustained load, relative to the expected share. Default 0.05. Bounded-load
   * hashing needs more: a light endpoint's cap is a few requests, so it spills more than its share.
   */
  readonly loadedShareTolerance?: number
  /** Tells runs of one policy with different options apart. */
  readonly label?: string
}

const PICKS = 40_000
const SHARE_TOLERANCE = 0.05
const CONCURRENCY = 20
const SHARE_WEIGHTS = [1, 2, 3, 4] as const

/**
 * The contract every policy keeps, whatever its algorithm: it never returns an excluded endpoint,
 * answers undefined only when nothing is left, keeps its shares, and survives snapshot swaps.
 */
export function runPickerConformance(
  definition: PickerDefinition,
  options: PickerConformanceOptions,
): void {
  const title = options.label ? `${definition.name} (${options.label})` : definition.name
  const create = (seed = 1): Picker =>
    createFromDefinition(definition, options.policyOptions ?? {}, seededDeps(seed))
  const ctxFor = contextFactory(options.hashed)
  const expectedShares = (eligible: readonly Endpoint[]): number[] =>
    options.weighted ? eligible.map((e) => e.weight) : eligible.map(() => 1)
  const loadedTolerance = options.loadedShareTolerance ?? SHARE_TOLERANCE

  describe(`${title} picker conformance`, () => {
    it('returns undefined for an empty snapshot', () => {
      const picker = create()
      assert.equal(picker.pick(Object.freeze([]), ctxFor(0)), undefined)
      assert.equal(picker.pick(Object.freeze([]), { attempt: 0 }), undefined)
    })

    it('returns undefined when every endpoint is excluded', () => {
      const picker = create()
      const eligible = makeEndpoints([1, 2, 3])
      const exclude = new Set(eligible.map((e) => e.id))
      for (let i = 0; i < 50; i++) {
        assert.equal(picker.pick(eligible, { ...ctxFor(i), attempt: 1, exclude }), undefined)
      }
    })

    it('returns the one endpoint left when all others are excluded', () => {
      const picker = create()
      const eligible = makeEndpoints([1, 2, 3, 4, 5])
      for (const survivor of eligible) {
        const exclude = new Set(eligible.filter((e) => e !== survivor).map((e) => e.id))
        for (let i = 0; i < 50; i++) {
          assert.equal(picker.pick(eligible, { ...ctxFor(i), attempt: 1, exclude }), survivor)
        }
      }
    })

    it('never returns an excluded endpoint, and always returns one while any is left (property)', () => {
      checkExclusionProperty(create, options.hashed)
    })

    if (options.idleProportional !== false) {
      it(`spreads idle picks ${options.weighted ? 'in proportion to weight' : 'evenly'}`, () => {
        const eligible = makeEndpoints(SHARE_WEIGHTS)
        const counts = countPicks(create(), eligible, PICKS, ctxFor)
        assertShares(counts, eligible, expectedShares(eligible))
      })
    }

    it(`spreads picks under sustained load ${options.weighted ? 'in proportion to weight' : 'evenly'}`, () => {
      const eligible = makeEndpoints(SHARE_WEIGHTS)
      const counts = countPicksUnderLoad(create(), eligible, PICKS, ctxFor)
      assertShares(counts, eligible, expectedShares(eligible), loadedTolerance)
    })

    it('after a snapshot swap returns only members of the new snapshot, in its proportions', () => {
      const picker = create()
      const pool = makeEndpoints([1, 2, 3, 4, 2, 1])
      const before = snapshot(pool.slice(0, 4))
      countPicksUnderLoad(picker, before, 1_000, ctxFor)
      const after = snapshot([pool[2]!, pool[3]!, pool[4]!, pool[5]!])
      const counts = countPicksUnderLoad(picker, after, PICKS, ctxFor)
      assertShares(counts, after, expectedShares(after), loadedTolerance)
    })

    if (options.hashed !== undefined) {
      runHashingChecks(create, ctxFor, expectedShares)
    }

    if (options.loadAware) {
      it(`spreads held requests ${options.weighted ? 'in proportion to weight' : 'evenly'}`, () => {
        const picker = create()
        const eligible = makeEndpoints(SHARE_WEIGHTS)
        const held = 400
        const leases: Lease[] = []
        for (let i = 0; i < held; i++) leases.push(picker.pick(eligible, ctxFor(i))!.begin())
        const shares = expectedShares(eligible)
        const total = shares.reduce((a, b) => a + b, 0)
        eligible.forEach((endpoint, i) => {
          const expected = (held * shares[i]!) / total
          assert.ok(
            Math.abs(endpoint.inflight - expected) <= Math.max(4, expected * 0.1),
            `${endpoint.id}: ${endpoint.inflight} in flight, expected about ${expected}`,
          )
        })
        for (const lease of leases) lease.end({ ok: true, latencyMs: 10 })
      })
    }
  })
}

function runHashingChecks(
  create: (seed?: number) => Picker,
  ctxFor: (i: number) => PickContext,
  expectedShares: (eligible: readonly Endpoint[]) => number[],
): void {
  it('sends a key to the same endpoint every time, in every instance and snapshot order', () => {
    const eligible = makeEndpoints([1, 2, 3, 4, 1, 2])
    const reversed = snapshot([...eligible].reverse())
    const a = create(1)
    const b = create(2)
    for (let i = 0; i < 2_000; i++) {
      const first = a.pick(eligible, ctxFor(i))
      assert.equal(a.pick(eligible, ctxFor(i)), first)
      assert.equal(b.pick(reversed, ctxFor(i)), first)
    }
  })

  it('falls back to weight-proportional random picks when the request has no key', () => {
    const eligible = makeEndpoints(SHARE_WEIGHTS)
    const counts = countPicks(create(), eligible, PICKS, () => ({ attempt: 0 }))
    assertShares(counts, eligible, expectedShares(eligible))
  })

  const n = 10
  const keys = 10_000

  it(`removing one of ${n} endpoints moves only its own keys, about 1/${n}`, () => {
    const eligible = makeEndpoints(Array.from({ length: n }, () => 1))
    const removed = eligible[3]!
    const after = snapshot(eligible.filter((e) => e !== removed))
    const picker = create()
    const moves = countMoves(picker, eligible, after, keys, ctxFor)
    assert.ok(moves.moved / keys <= 1.5 / n, `moved ${moves.moved} of ${keys}`)
    assert.ok(moves.onUnaffected.moved / moves.onUnaffected.total <= 0.01, describeMoves(moves))
  })

  it(`adding an endpoint to ${n} moves about 1/${n + 1} of keys, almost all to it`, () => {
    const pool = makeEndpoints(Array.from({ length: n + 1 }, () => 1))
    const before = snapshot(pool.slice(0, n))
    const picker = create()
    const moves = countMoves(picker, before, pool, keys, ctxFor)
    assert.ok(moves.moved / keys <= 1.5 / (n + 1), `moved ${moves.moved} of ${keys}`)
    assert.ok(moves.movedTo(pool[n]!) >= moves.moved * 0.95, describeMoves(moves))
  })
}

interface Moves {
  readonly moved: number
  /** Keys whose endpoint is in both snapshots. */
  readonly onUnaffected: { readonly total: number; readonly moved: number }
  movedTo(endpoint: Endpoint): number
}

function countMoves(
  picker: Picker,
  before: readonly Endpoint[],
  after: readonly Endpoint[],
  keys: number,
  ctxFor: (i: number) => PickContext,
): Moves {
  const first = Array.from({ length: keys }, (_, i) => picker.pick(before, ctxFor(i))!)
  const second = Array.from({ length: keys }, (_, i) => picker.pick(after, ctxFor(i))!)
  let moved = 0
  let unaffected = 0
  let unaffectedMoved = 0
  const targets = new Map<Endpoint, number>()
  for (let i = 0; i < keys; i++) {
    const changed = first[i] !== second[i]
    if (changed) {
      moved++
      targets.set(second[i]!, (targets.get(second[i]!) ?? 0) + 1)
    }
    if (after.includes(first[i]!)) {
      unaffected++
      if (changed) unaffectedMoved++
    }
  }
  return {
    moved,
    onUnaffected: { total: unaffected, moved: unaffectedMoved },
    movedTo: (endpoint) => targets.get(endpoint) ?? 0,
  }
}

function describeMoves(moves: Moves): string {
  return `moved ${moves.moved}; ${moves.onUnaffected.moved} of ${moves.onUnaffected.total} keys on unaffected endpoints moved`
}

function contextFactory(hashed: 'key' | 'ip' | undefined): (i: number) => PickContext {
  if (hashed === 'key') return (i) => ({ attempt: 0, hashKey: `key-${i}` })
  if (hashed === 'ip') return (i) => ({ attempt: 0, clientIp: ipFor(i) })
  return () => ({ attempt: 0 })
}

/** A closed loop: `concurrency` requests in flight, the oldest finishing before each new pick. */
function countPicksUnderLoad(
  picker: Picker,
  eligible: readonly Endpoint[],
  picks: number,
  ctxFor: (i: number) => PickContext,
): Map<string, number> {
  const counts = new Map<string, number>()
  const inFlight: Lease[] = []
  for (let i = 0; i < picks; i++) {
    if (inFlight.length >= CONCURRENCY) inFlight.shift()!.end({ ok: true, latencyMs: 10 })
    const endpoint = picker.pick(eligible, ctxFor(i))
    assert.ok(endpoint !== undefined, 'picked nothing from a non-empty snapshot')
    counts.set(endpoint.id, (counts.get(endpoint.id) ?? 0) + 1)
    inFlight.push(endpoint.begin())
  }
  for (const lease of inFlight) lease.end({ ok: true, latencyMs: 10 })
  return counts
}

function assertShares(
  counts: ReadonlyMap<string, number>,
  eligible: readonly Endpoint[],
  shares: readonly number[],
  tolerance = SHARE_TOLERANCE,
): void {
  const ids = new Set(eligible.map((e) => e.id))
  for (const id of counts.keys()) assert.ok(ids.has(id), `picked ${id}, not in the snapshot`)
  const picks = [...counts.values()].reduce((a, b) => a + b, 0)
  const totalShare = shares.reduce((a, b) => a + b, 0)
  const report = eligible.map((e) => `${e.id}=${counts.get(e.id) ?? 0}`).join(' ')
  eligible.forEach((endpoint, i) => {
    const expected = shares[i]! / totalShare
    const actual = (counts.get(endpoint.id) ?? 0) / picks
    assert.ok(
      Math.abs(actual - expected) <= expected * tolerance,
      `${endpoint.id}: share ${actual.toFixed(4)}, expected ${expected.toFixed(4)} ±${tolerance * 100}% (${report})`,
    )
  })
}

/**
 * Random walks over snapshots of one pool (so stateful pickers see swaps), random exclusions
 * (including ids no longer in the snapshot), keys, and leases held and released between picks.
 */
function checkExclusionProperty(
  create: (seed?: number) => Picker,
  hashed: 'key' | 'ip' | undefined,
): void {
  const pool = makeEndpoints([1, 2, 3, 4, 1, 5, 2, 3])
  // One picker and one snapshot per membership across all runs, as in a long-lived group: state
  // carries over between runs, and hash tables are built once per membership, not per run.
  const picker = create()
  const snapshots = new Map<number, readonly Endpoint[]>()
  const step = fc.record({
    members: fc.integer({ min: 0, max: 255 }),
    exclude: fc.integer({ min: 0, max: 255 }),
    key: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    attempt: fc.nat(3),
    hold: fc.boolean(),
    release: fc.nat(4),
  })
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
      const leases: Lease[] = []
      try {
        for (const s of steps) {
          let eligible = snapshots.get(s.members)
          if (eligible === undefined) {
            eligible = snapshot(pool.filter((_, i) => (s.members >> i) & 1))
            snapshots.set(s.members, eligible)
          }
          const exclude = new Set(pool.filter((_, i) => (s.exclude >> i) & 1).map((e) => e.id))
          const ctx: PickContext = {
            attempt: s.attempt,
            exclude,
            hashKey: hashed === 'key' ? s.key : undefined,
            clientIp: hashed === 'ip' ? s.key : undefined,
          }
          const picked = picker.pick(eligible, ctx)
          const left = eligible.filter((e) => !exclude.has(e.id))
          if (left.length === 0) {
            assert.equal(picked, undefined)
          } else {
            assert.ok(picked !== undefined && left.includes(picked), `picked ${picked?.id}`)
            if (s.hold) leases.push(picked.begin())
          }
          for (let r = 0; r < s.release && leases.length > 0; r++) {
            leases.shift()!.end({ ok: r % 2 === 0, latencyMs: 5 + 40 * r })
          }
        }
      } finally {
        for (const lease of leases) lease.end({ ok: true, latencyMs: 10 })
      }
    }),
    { seed: 20_240_601, numRuns: 500 },
  )
}
