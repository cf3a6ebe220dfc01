import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import type {
  AdmissionQueueOptions,
  AdmissionTicket,
} from '../../../src/resilience/admission-types.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function setup(options: AdmissionQueueOptions = {}) {
  return createAdmissionQueue<string>(options, { clock: createManualClock() })
}

describe('admission queue: per-tenant bound of a full queue', () => {
  it('lets a tenant that holds nothing take the place of the newest entry of the one that filled the queue', async () => {
    const queue = setup({ maxEntries: 4 })
    const hog = ['a1', 'a2', 'a3', 'a4'].map((value) => queue.enqueue({ value, tenant: 'A' }))
    const newcomer = queue.enqueue({ value: 'b1', tenant: 'B' })
    assert.equal(newcomer.state, 'queued')
    assert.deepEqual(
      hog.map((t) => t.state),
      ['queued', 'queued', 'queued', 'rejected'],
    )
    const evicted = await hog[3]!.outcome
    assert.ok(evicted.status === 'rejected' && evicted.reason === 'LB_ERR_QUEUE_FULL')
    assert.deepEqual(queue.depth({ tenant: 'A' }), { count: 3, bytes: 0 })
  })

  it('stops at an equal split: a tenant at its fair share is refused, not let in by eviction', async () => {
    const queue = setup({ maxEntries: 4 })
    for (let i = 0; i < 4; i++) queue.enqueue({ value: `a${i}`, tenant: 'A' })
    queue.enqueue({ value: 'b1', tenant: 'B' })
    queue.enqueue({ value: 'b2', tenant: 'B' })
    assert.deepEqual(queue.depth({ tenant: 'A' }).count, 2)
    const third = queue.enqueue({ value: 'b3', tenant: 'B' })
    const outcome = await third.outcome
    assert.ok(outcome.status === 'rejected' && outcome.reason === 'LB_ERR_QUEUE_FULL')
    // Nor can A win its places back: it is at its share too.
    assert.equal(queue.enqueue({ value: 'a5', tenant: 'A' }).state, 'rejected')
    assert.deepEqual(queue.depth({ tenant: 'B' }).count, 2)
  })

  it('lets a tenant alone fill the whole queue', () => {
    const queue = setup({ maxEntries: 3 })
    for (let i = 0; i < 3; i++) queue.enqueue({ value: `a${i}`, tenant: 'A' })
    assert.equal(queue.enqueue({ value: 'a3', tenant: 'A' }).state, 'rejected')
    assert.equal(queue.size, 3)
  })

  it('bounds bytes the same way: one huge entry does not keep every other tenant out', () => {
    const queue = setup({ maxBytes: 1000 })
    const big = queue.enqueue({ value: 'big', tenant: 'A', sizeBytes: 1000 })
    const small = queue.enqueue({ value: 'small', tenant: 'B', sizeBytes: 1 })
    assert.equal(small.state, 'queued')
    assert.equal(big.state, 'rejected')
  })

  it('evicts only from the newcomer’s band or lower, lowest first', () => {
    const queue = setup({ maxEntries: 4 })
    const high = [queue.enqueue({ value: 'a-high', tenant: 'A', priority: 5 })]
    const low = ['a-low1', 'a-low2'].map((value) =>
      queue.enqueue({ value, tenant: 'A', priority: -1, sheddable: false }),
    )
    const mid = queue.enqueue({ value: 'a-mid', tenant: 'A', priority: 0 })
    // A newcomer at 0 takes A's newest entry of the lowest band, not the newer one in its own.
    assert.equal(queue.enqueue({ value: 'b', tenant: 'B', priority: 0 }).state, 'queued')
    assert.deepEqual(
      [...high, ...low, mid].map((t) => t.state),
      ['queued', 'queued', 'rejected', 'queued'],
    )
    // A newcomer below everything A holds can reach nothing: refused.
    const queue2 = setup({ maxEntries: 2 })
    queue2.enqueue({ value: 'a1', tenant: 'A', priority: 1 })
    queue2.enqueue({ value: 'a2', tenant: 'A', priority: 1 })
    assert.equal(queue2.enqueue({ value: 'b', tenant: 'B', priority: 0 }).state, 'rejected')
  })

  it('is off with fairShareEviction: false', () => {
    const queue = setup({ maxEntries: 2, fairShareEviction: false })
    queue.enqueue({ value: 'a1', tenant: 'A' })
    queue.enqueue({ value: 'a2', tenant: 'A' })
    assert.equal(queue.enqueue({ value: 'b', tenant: 'B' }).state, 'rejected')
  })

  it('never lets a full queue turn away a tenant below its share while another is over it (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(
          fc.record({
            tenant: fc.constantFrom('A', 'B', 'C'),
            sizeBytes: fc.integer({ min: 0, max: 30 }),
            priority: fc.integer({ min: -1, max: 1 }),
          }),
          { maxLength: 60 },
        ),
        (maxEntries, arrivals) => {
          const maxBytes = 100
          const queue = setup({ maxEntries, maxBytes })
          const tickets: AdmissionTicket<string>[] = []
          for (const arrival of arrivals) {
            const before = new Map(['A', 'B', 'C'].map((t) => [t, queue.depth({ tenant: t })]))
            const ticket = queue.enqueue({ value: arrival.tenant, ...arrival })
            tickets.push(ticket)
            assert.ok(queue.size <= maxEntries && queue.bytes <= maxBytes)
            if (ticket.state !== 'rejected' || arrival.sizeBytes > maxBytes) continue
            // Refused: either its tenant was at its share, or nobody reachable was over theirs.
            const present = [...before].filter(([, d]) => d.count > 0).map(([t]) => t)
            const tenants = new Set([...present, arrival.tenant]).size
            const mine = before.get(arrival.tenant)!
            const underShare =
              mine.count + 1 <= maxEntries / tenants &&
              mine.bytes + arrival.sizeBytes <= maxBytes / tenants
            const reachableHog = tickets.some(
              (t) =>
                t.state === 'queued' &&
                t.entry.tenant !== arrival.tenant &&
                t.entry.priority <= arrival.priority &&
                queue.depth({ tenant: t.entry.tenant }).count > maxEntries / tenants,
            )
            const onlyCountShort =
              queue.size + 1 > maxEntries && queue.bytes + arrival.sizeBytes <= maxBytes
            if (underShare && onlyCountShort) {
              assert.ok(!reachableHog, 'refused while a tenant over its share was in reach')
            }
          }
        },
      ),
    )
  })
})
