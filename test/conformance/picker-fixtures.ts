import assert from 'node:assert/strict'
import type { PickContext, Picker, PickerDeps } from '../../src/balancer/picker.ts'
import type { PickerDefinition } from '../../src/balancer/picker-definition.ts'
import { Endpoint, type Lease } from '../../src/upstream/endpoint.ts'
import type { Clock } from '../../src/util/clock.ts'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../src/util/random.ts'

/** Frozen, so a picker that mutates its snapshot throws. Ids are `<prefix><i>`. */
export function makeEndpoints(
  weights: readonly number[],
  prefix = 'e',
  clock: Clock = createManualClock(),
): readonly Endpoint[] {
  return Object.freeze(
    weights.map(
      (weight, i) =>
        new Endpoint(
          {
            id: `${prefix}${i}`,
            url: `http://10.0.0.${i}:80`,
            origin: `http://10.0.0.${i}:80`,
            weight,
          },
          { clock },
        ),
    ),
  )
}

export function snapshot(endpoints: readonly Endpoint[]): readonly Endpoint[] {
  return Object.freeze([...endpoints])
}

export function seededDeps(seed = 1): PickerDeps {
  return { clock: createManualClock(), random: createSeededRandom(seed) }
}

/** Builds a picker the way config does: options through the definition's schema. */
export function createFromDefinition(
  definition: PickerDefinition,
  options: unknown = {},
  deps: PickerDeps = seededDeps(),
): Picker {
  return definition.create(definition.optionsSchema.parse(options), deps)
}

export function ipFor(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
}

/** Holds `count` leases on `endpoint`, so its in-flight count reads `count` higher. */
export function hold(endpoint: Endpoint, count: number): Lease[] {
  const leases: Lease[] = []
  for (let i = 0; i < count; i++) leases.push(endpoint.begin())
  return leases
}

/** Records one finished request, so the endpoint's latency EWMA moves. */
export function sample(endpoint: Endpoint, latencyMs: number): void {
  endpoint.begin().end({ ok: true, latencyMs })
}

export function releaseAll(leases: Lease[], latencyMs = 10): void {
  for (const lease of leases) lease.end({ ok: true, latencyMs })
  leases.length = 0
}

/** How many times each id was picked in `picks` calls. */
export function countPicks(
  picker: Picker,
  eligible: readonly Endpoint[],
  picks: number,
  ctxFor: (i: number) => PickContext = () => ({ attempt: 0 }),
): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < picks; i++) {
    const endpoint = picker.pick(eligible, ctxFor(i))
    const id = endpoint?.id ?? 'undefined'
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

export function sequence(picker: Picker, eligible: readonly Endpoint[], picks: number): string {
  const ids: string[] = []
  for (let i = 0; i < picks; i++) ids.push(picker.pick(eligible, { attempt: 0 })?.id ?? '-')
  return ids.join(' ')
}

/** One pick of a property run: which endpoints a bitmask excludes, and whether to keep the pick. */
export interface ExclusionStep {
  readonly exclude: number
  readonly hold: boolean
}

/**
 * Picks once per step with the endpoints the step's bitmask excludes (bit i: `eligible[i]`), checks
 * that nothing is picked when none are left and otherwise one of those left, hands each pick to
 * `check`, and holds it when the step says so. Leases taken are pushed on `leases`.
 */
export function pickExcluding(
  picker: Picker,
  eligible: readonly Endpoint[],
  steps: readonly ExclusionStep[],
  leases: Lease[],
  check: (picked: Endpoint, left: readonly Endpoint[]) => void,
): void {
  for (const step of steps) {
    const exclude = new Set(eligible.filter((_, i) => (step.exclude >> i) & 1).map((e) => e.id))
    const left = eligible.filter((e) => !exclude.has(e.id))
    const picked = picker.pick(eligible, { attempt: 1, exclude })
    if (left.length === 0) {
      assert.equal(picked, undefined)
      continue
    }
    assert.ok(picked !== undefined && left.includes(picked))
    check(picked, left)
    if (step.hold) leases.push(picked.begin())
  }
}
