import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import type { AdmissionQueueOptions } from '../../../src/resilience/admission-types.ts'
import { createFairBand } from '../../../src/resilience/fair-band.ts'
import { createQueuedEntry } from '../../../src/resilience/queued-entry.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function setup(options: AdmissionQueueOptions = {}) {
  const clock = createManualClock()
  const queue = createAdmissionQueue<string>(
    { maxEntries: 100_000, defaultMaxWaitMs: 3_600_000, ...options },
    { clock },
  )
  return { clock, queue }
}

/**
 * Runs `ticks` rounds of arrivals, each followed by `capacity` admissions; returns the admissions
 * per tenant after `warmup` rounds.
 */
function simulate(
  arrivalsPerTick: Record<string, number>,
  capacity: number,
  ticks: number,
  warmup: number,
) {
  const { clock, queue } = setup()
  const admitted: Record<string, number> = {}
  for (const tenant of Object.keys(arrivalsPerTick)) admitted[tenant] = 0
  for (let tick = 0; tick < ticks; tick++) {
    for (const [tenant, n] of Object.entries(arrivalsPerTick)) {
      for (let i = 0; i < n; i++) queue.enqueue({ value: tenant, tenant })
    }
    for (let i = 0; i < capacity; i++) {
      const entry = queue.tryAdmit()
      if (entry && tick >= warmup) admitted[entry.tenant]!++
    }
    clock.advance(100)
  }
  return admitted
}

describe('fair share within a band', () => {
  it('serves a light tenant all it asks while a heavy one floods the band', () => {
    // FIFO alone would give the light tenant 1/11 of a saturated server and a growing wait.
    const admitted = simulate({ heavy: 10, light: 1 }, 2, 300, 50)
    assert.equal(admitted.light, 250)
    assert.equal(admitted.heavy, 250)
  })

  it('splits capacity equally among backlogged tenants, whatever their arrival rates', () => {
    const admitted = simulate({ heavy: 10, medium: 3, light: 2 }, 3, 300, 50)
    const total = admitted.heavy! + admitted.medium! + admitted.light!
    for (const tenant of ['heavy', 'medium', 'light']) {
      const share = admitted[tenant]! / total
      assert.ok(Math.abs(share - 1 / 3) < 0.01, `${tenant} got ${share}`)
    }
  })

  it('gives tenants capacity in proportion to their weights', () => {
    const { queue } = setup({ tenantWeights: { gold: 3 } })
    for (let i = 0; i < 100; i++) {
      queue.enqueue({ value: 'gold', tenant: 'gold' })
      queue.enqueue({ value: 'free', tenant: 'free' })
    }
    const counts = { gold: 0, free: 0 }
    for (let i = 0; i < 80; i++) counts[queue.tryAdmit()!.value as 'gold' | 'free']++
    assert.deepEqual(counts, { gold: 60, free: 20 })
  })

  it('shares predicted cost, not request count', () => {
    const { queue } = setup()
    for (let i = 0; i < 50; i++) {
      queue.enqueue({ value: 'long', tenant: 'long', predictedCost: 10 })
      for (let j = 0; j < 10; j++)
        queue.enqueue({ value: 'short', tenant: 'short', predictedCost: 1 })
    }
    const counts = { long: 0, short: 0 }
    for (let i = 0; i < 110; i++) counts[queue.tryAdmit()!.value as 'long' | 'short']++
    assert.deepEqual(counts, { long: 10, short: 100 })
  })

  it('lets a tenant returning from idle bank no credit for the time it was away', () => {
    const { queue } = setup()
    for (let i = 0; i < 200; i++) queue.enqueue({ value: 'steady', tenant: 'steady' })
    for (let i = 0; i < 100; i++) queue.tryAdmit()
    for (let i = 0; i < 100; i++) queue.enqueue({ value: 'newcomer', tenant: 'newcomer' })
    const next = Array.from({ length: 20 }, () => queue.tryAdmit()!.value)
    assert.equal(next.filter((v) => v === 'newcomer').length, 10, next.join(','))
  })

  it('keeps weighted served cost within one entry of each other while all stay backlogged (property)', () => {
    const tenant = fc.record({
      weight: fc.integer({ min: 1, max: 4 }),
      costs: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 30, maxLength: 30 }),
    })
    fc.assert(
      fc.property(
        fc.array(tenant, { minLength: 2, maxLength: 5 }),
        fc.integer({ min: 1, max: 25 }),
        (tenants, admits) => {
          const tenantWeights = Object.fromEntries(tenants.map((t, i) => [`t${i}`, t.weight]))
          const { queue } = setup({ tenantWeights })
          // Interleave arrivals so no tenant gets a head start from arrival order.
          for (let k = 0; k < 30; k++) {
            tenants.forEach((t, i) => {
              queue.enqueue({ value: `t${i}`, tenant: `t${i}`, predictedCost: t.costs[k]! })
            })
          }
          const served = tenants.map(() => 0)
          for (let k = 0; k < admits; k++) {
            const entry = queue.tryAdmit()!
            const i = Number(entry.tenant.slice(1))
            served[i]! += entry.predictedCost / tenants[i]!.weight
          }
          const maxCharge = Math.max(...tenants.flatMap((t) => t.costs.map((c) => c / t.weight)))
          assert.ok(Math.max(...served) - Math.min(...served) <= maxCharge + 1e-9)
        },
      ),
    )
  })

  it('forgets idle tenants once their counters fall behind, so memory follows the backlog', () => {
    const band = createFairBand<string>({ priority: 0, order: 'fifo', weightOf: () => 1 })
    const entry = (tenant: string, seq: number) =>
      createQueuedEntry({
        value: tenant,
        priority: 0,
        tenant,
        sizeBytes: 0,
        predictedCost: 1,
        sheddable: false,
        enqueuedAtMs: 0,
        deadlineMs: Number.POSITIVE_INFINITY,
        seq,
        urgentAtMs: Number.POSITIVE_INFINITY,
      })
    let seq = 0
    band.add(entry('anchor', seq++))
    for (let i = 0; i < 10_000; i++) {
      band.add(entry('anchor', seq++))
      band.add(entry(`visitor-${i}`, seq++))
      for (let k = 0; k < 2; k++) {
        const next = band.candidates(0).next()
        assert.ok(!next.done)
        band.admit(next.value)
      }
    }
    assert.equal(band.count, 1, 'the anchor kept the band busy throughout')
    assert.ok(band.rememberedTenants < 200, `remembers ${band.rememberedTenants} tenants`)
  })
})
