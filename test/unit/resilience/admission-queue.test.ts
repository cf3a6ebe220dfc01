import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import type {
  AdmissionQueueOptions,
  AdmissionTicket,
} from '../../../src/resilience/admission-types.ts'
import type { Clock } from '../../../src/util/clock.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function setup(options: AdmissionQueueOptions = {}) {
  const clock = createManualClock()
  const queue = createAdmissionQueue<string>(options, { clock })
  return { clock, queue }
}

/** Admits with no predicate until the queue is empty; returns the admitted values in order. */
function drain(queue: ReturnType<typeof setup>['queue']): string[] {
  const order: string[] = []
  for (let entry = queue.tryAdmit(); entry; entry = queue.tryAdmit()) order.push(entry.value)
  return order
}

describe('admission queue', () => {
  describe('priority', () => {
    it('serves bands strictly from the highest priority down, FIFO within one', async () => {
      const { queue } = setup()
      queue.enqueue({ value: 'batch-1', priority: -1 })
      const first = queue.enqueue({ value: 'interactive-1', priority: 0 })
      queue.enqueue({ value: 'critical', priority: 10 })
      queue.enqueue({ value: 'interactive-2', priority: 0 })
      queue.enqueue({ value: 'batch-2', priority: -1 })
      assert.equal(queue.peek()?.value, 'critical')
      assert.deepEqual(drain(queue), [
        'critical',
        'interactive-1',
        'interactive-2',
        'batch-1',
        'batch-2',
      ])
      assert.deepEqual(await first.outcome, { status: 'admitted', waitedMs: 0 })
      assert.equal(first.state, 'admitted')
    })

    it('never admits a lower priority while a higher one is waiting (property)', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 40 }), (priorities) => {
          const clock = createManualClock()
          const queue = createAdmissionQueue<number>({}, { clock })
          for (const priority of priorities) queue.enqueue({ value: priority, priority })
          const admitted: number[] = []
          for (let e = queue.tryAdmit(); e; e = queue.tryAdmit()) admitted.push(e.priority)
          assert.deepEqual(
            admitted,
            [...priorities].sort((a, b) => b - a),
          )
        }),
      )
    })

    it('rejects a non-integer priority and a non-positive cost as caller bugs', () => {
      const { queue } = setup()
      assert.throws(() => queue.enqueue({ value: 'x', priority: 0.5 }), RangeError)
      assert.throws(() => queue.enqueue({ value: 'x', predictedCost: 0 }), RangeError)
      assert.throws(() => queue.enqueue({ value: 'x', sizeBytes: -1 }), RangeError)
      assert.throws(() => createAdmissionQueue({ maxEntries: 0 }, { clock: createManualClock() }))
    })
  })

  describe('deadlines', () => {
    it('rejects an entry with LB_ERR_DEADLINE when its deadline passes while queued', async () => {
      const { clock, queue } = setup()
      const ticket = queue.enqueue({ value: 'a', maxWaitMs: 100 })
      clock.advance(99)
      assert.equal(ticket.state, 'queued')
      clock.advance(1)
      assert.equal(ticket.state, 'rejected')
      const outcome = await ticket.outcome
      assert.equal(outcome.status, 'rejected')
      assert.equal(outcome.status === 'rejected' && outcome.reason, 'LB_ERR_DEADLINE')
      assert.equal(outcome.waitedMs, 100)
      assert.equal(queue.size, 0)
    })

    it('keeps one timer, for the earliest deadline, however many entries wait', () => {
      const { clock, queue } = setup()
      for (let i = 0; i < 50; i++) queue.enqueue({ value: `e${i}`, maxWaitMs: 1_000 + i * 10 })
      assert.equal(clock.pendingTimers, 1)
      clock.advance(1_250)
      assert.equal(queue.size, 24)
      assert.equal(clock.pendingTimers, 1)
      drain(queue)
      clock.advance(1_000)
      assert.equal(clock.pendingTimers, 0, 'an empty queue re-arms nothing')
    })

    it('applies defaultMaxWaitMs when no deadline is given, and the earlier of two', () => {
      const { clock, queue } = setup({ defaultMaxWaitMs: 500 })
      assert.equal(queue.enqueue({ value: 'a' }).entry.deadlineMs, 500)
      assert.equal(
        queue.enqueue({ value: 'b', deadlineMs: 900, maxWaitMs: 200 }).entry.deadlineMs,
        200,
      )
      assert.equal(queue.enqueue({ value: 'c', deadlineMs: 900 }).entry.deadlineMs, 900)
      clock.advance(1_000)
      assert.equal(queue.size, 0)
    })

    it('refuses at once an entry whose deadline has already passed', async () => {
      const { clock, queue } = setup()
      clock.advance(1_000)
      const outcome = await queue.enqueue({ value: 'late', deadlineMs: 1_000 }).outcome
      assert.equal(outcome.status === 'rejected' && outcome.reason, 'LB_ERR_DEADLINE')
    })

    it('enforces a passed deadline in tryAdmit even when the timer is late', async () => {
      let nowMs = 0
      const lazyClock: Clock = {
        now: () => nowMs,
        wallNow: () => nowMs,
        setTimer: () => ({ clear() {} }),
      }
      const queue = createAdmissionQueue<string>({}, { clock: lazyClock })
      const expired = queue.enqueue({ value: 'expired', maxWaitMs: 10 })
      queue.enqueue({ value: 'fresh', maxWaitMs: 1_000 })
      nowMs = 10
      assert.equal(queue.tryAdmit()?.value, 'fresh')
      const outcome = await expired.outcome
      assert.equal(outcome.status === 'rejected' && outcome.reason, 'LB_ERR_DEADLINE')
    })
  })

  it('tells entries that expire in one instant one Retry-After, counting their batch ahead of the last of them, not the empty queue’s 1 s', async () => {
    const { clock, queue } = setup()
    // A drain rate to predict from: ten admitted over a second.
    for (let i = 0; i < 10; i++) {
      queue.enqueue({ value: `warm-${i}`, predictedCost: 100 })
      clock.advance(100)
      queue.tryAdmit()
    }
    const tickets = Array.from({ length: 7 }, (_, i) =>
      queue.enqueue({ value: `late-${i}`, predictedCost: 1_000, maxWaitMs: 1_500 }),
    )
    clock.advance(1_500)
    const hints = new Set<number>()
    for (const ticket of tickets) {
      const outcome = await ticket.outcome
      assert.ok(outcome.status === 'rejected' && outcome.reason === 'LB_ERR_DEADLINE')
      hints.add(outcome.retryAfterMs)
    }
    assert.equal(hints.size, 1, `hints ${[...hints]}`)
    // 6,000 of cost ahead on average when all seven come back, at no more than the 1,000 a second
    // drained before they queued (less since: nothing left for 1.5 s).
    const [hint] = hints
    assert.ok(hint! >= 6_000 && hint! < 60_000, `hint ${hint}`)
  })

  it('tells every entry that close() rejects in one band one Retry-After, as at a deadline', async () => {
    const { queue } = setup()
    // No drain rate yet: a wait counting the others still queued would read infinite (60 s).
    const tickets = Array.from({ length: 5 }, (_, i) => queue.enqueue({ value: `w-${i}` }))
    queue.close()
    const hints = new Set<number>()
    for (const ticket of tickets) {
      const outcome = await ticket.outcome
      assert.ok(outcome.status === 'rejected' && outcome.reason === 'LB_ERR_SHED')
      hints.add(outcome.retryAfterMs)
    }
    assert.equal(hints.size, 1, `hints ${[...hints]}`)
  })

  describe('bounds and shedding', () => {
    it('refuses protected work with LB_ERR_QUEUE_FULL beyond maxEntries', async () => {
      const { queue } = setup({ maxEntries: 2 })
      queue.enqueue({ value: 'a' })
      queue.enqueue({ value: 'b' })
      const refused = await queue.enqueue({ value: 'c', priority: 5 }).outcome
      assert.equal(refused.status === 'rejected' && refused.reason, 'LB_ERR_QUEUE_FULL')
      assert.ok(refused.status === 'rejected' && refused.retryAfterMs >= 1_000)
      assert.equal(queue.size, 2)
    })

    it('refuses beyond maxBytes, and an entry larger than the whole queue', async () => {
      const { queue } = setup({ maxBytes: 100 })
      queue.enqueue({ value: 'a', sizeBytes: 60 })
      const tooMany = await queue.enqueue({ value: 'b', sizeBytes: 50 }).outcome
      assert.equal(tooMany.status === 'rejected' && tooMany.reason, 'LB_ERR_QUEUE_FULL')
      queue.enqueue({ value: 'c', sizeBytes: 40 })
      assert.equal(queue.bytes, 100)
      const huge = await queue.enqueue({ value: 'd', sizeBytes: 101, priority: 9 }).outcome
      assert.equal(huge.status === 'rejected' && huge.reason, 'LB_ERR_QUEUE_FULL')
    })

    it('lets a higher priority evict the newest sheddable entry of the heaviest tenant', async () => {
      const { queue } = setup({ maxEntries: 4 })
      const heavy = ['h1', 'h2', 'h3'].map((value) =>
        queue.enqueue({ value, priority: -1, tenant: 'heavy' }),
      )
      const light = queue.enqueue({ value: 'l1', priority: -1, tenant: 'light' })
      const urgent = queue.enqueue({ value: 'urgent', priority: 0 })
      assert.equal(urgent.state, 'queued')
      const evicted = await heavy[2]!.outcome
      assert.equal(evicted.status === 'rejected' && evicted.reason, 'LB_ERR_SHED')
      assert.equal(light.state, 'queued')
      assert.deepEqual(drain(queue), ['urgent', 'h1', 'l1', 'h2'])
    })

    it('evicts only lower priorities, and nothing when eviction cannot make room', async () => {
      const { queue } = setup({ maxEntries: 10, maxBytes: 100 })
      const low = queue.enqueue({ value: 'low', priority: -2, sizeBytes: 30 })
      queue.enqueue({ value: 'protected', priority: 0, sizeBytes: 60 })
      // 70 bytes needed, only 30 sheddable: refused, and `low` survives.
      const big = await queue.enqueue({ value: 'big', priority: 1, sizeBytes: 80 }).outcome
      assert.equal(big.status === 'rejected' && big.reason, 'LB_ERR_QUEUE_FULL')
      assert.equal(low.state, 'queued')
      // A sheddable newcomer at the same priority cannot evict its peers: it is itself shed.
      const peer = await queue.enqueue({ value: 'peer', priority: -2, sizeBytes: 20 }).outcome
      assert.equal(peer.status === 'rejected' && peer.reason, 'LB_ERR_SHED')
      // One priority above it can.
      const above = queue.enqueue({ value: 'above', priority: -1, sizeBytes: 20 })
      assert.equal(above.state, 'queued')
      assert.equal(low.state, 'rejected')
    })

    it('never sheds work marked not sheddable, even at negative priority', async () => {
      const { queue } = setup({ maxEntries: 1 })
      const kept = queue.enqueue({ value: 'kept', priority: -5, sheddable: false })
      const refused = await queue.enqueue({ value: 'new', priority: 0 }).outcome
      assert.equal(refused.status === 'rejected' && refused.reason, 'LB_ERR_QUEUE_FULL')
      assert.equal(kept.state, 'queued')
      assert.equal(queue.shed(), 0)
    })

    it('sheds sheddable work on demand, lowest priority first', () => {
      const { queue } = setup()
      queue.enqueue({ value: 'p0', priority: 0 })
      const minus1 = queue.enqueue({ value: 'm1', priority: -1 })
      const minus2 = queue.enqueue({ value: 'm2', priority: -2 })
      assert.equal(queue.shed(1), 1)
      assert.equal(minus2.state, 'rejected')
      assert.equal(minus1.state, 'queued')
      assert.equal(queue.shed(), 1)
      assert.deepEqual(drain(queue), ['p0'])
    })

    it('never exceeds its bounds, and every entry leaves exactly once (property)', () => {
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('enqueue' as const),
          priority: fc.integer({ min: -2, max: 2 }),
          sizeBytes: fc.integer({ min: 0, max: 40 }),
          maxWaitMs: fc.integer({ min: 1, max: 500 }),
          tenant: fc.constantFrom('a', 'b', 'c'),
        }),
        fc.record({ kind: fc.constant('admit' as const), budget: fc.nat(8) }),
        fc.record({ kind: fc.constant('cancel' as const), index: fc.nat() }),
        fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 200 }) }),
      )
      fc.assert(
        fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
          const clock = createManualClock()
          const queue = createAdmissionQueue<number>({ maxEntries: 6, maxBytes: 100 }, { clock })
          const tickets: AdmissionTicket<number>[] = []
          for (const step of ops) {
            if (step.kind === 'enqueue')
              tickets.push(queue.enqueue({ value: tickets.length, ...step }))
            else if (step.kind === 'admit') queue.tryAdmit((e) => e.sizeBytes <= step.budget * 5)
            else if (step.kind === 'cancel' && tickets.length > 0)
              tickets[step.index % tickets.length]!.cancel()
            else if (step.kind === 'tick') clock.advance(step.ms)
            assert.ok(queue.size <= 6 && queue.bytes <= 100)
            const queued = tickets.filter((t) => t.state === 'queued')
            assert.equal(queue.size, queued.length)
            assert.equal(
              queue.bytes,
              queued.reduce((sum, t) => sum + t.entry.sizeBytes, 0),
            )
            assert.deepEqual(queue.depth(), { count: queue.size, bytes: queue.bytes })
          }
          queue.close()
          assert.ok(tickets.every((t) => t.state !== 'queued'))
          const stats = queue.stats()
          const rejected = Object.values(stats.rejectedTotal).reduce((a, b) => a + b, 0)
          assert.equal(stats.admittedTotal + rejected, stats.enqueuedTotal)
          assert.equal(clock.pendingTimers, 0)
        }),
      )
    })
  })

  describe('cancel and close', () => {
    it('withdraws a queued entry with LB_ERR_CLIENT_ABORTED, once', async () => {
      const { queue } = setup()
      const ticket = queue.enqueue({ value: 'a', sizeBytes: 10 })
      queue.enqueue({ value: 'b' })
      assert.equal(ticket.cancel(), true)
      assert.equal(ticket.cancel(), false)
      assert.deepEqual(await ticket.outcome, {
        status: 'rejected',
        reason: 'LB_ERR_CLIENT_ABORTED',
        waitedMs: 0,
        retryAfterMs: 0,
      })
      assert.equal(queue.size, 1)
      assert.equal(queue.bytes, 0)
      assert.deepEqual(drain(queue), ['b'])
    })

    it('cannot cancel an entry that was already admitted', () => {
      const { queue } = setup()
      const ticket = queue.enqueue({ value: 'a' })
      queue.tryAdmit()
      assert.equal(ticket.cancel(), false)
      assert.equal(ticket.state, 'admitted')
    })

    it('cancels when the request’s AbortSignal fires, and at once when already aborted', async () => {
      const { queue } = setup()
      const controller = new AbortController()
      const ticket = queue.enqueue({ value: 'a', signal: controller.signal })
      controller.abort()
      const outcome = await ticket.outcome
      assert.equal(outcome.status === 'rejected' && outcome.reason, 'LB_ERR_CLIENT_ABORTED')
      const late = await queue.enqueue({ value: 'b', signal: controller.signal }).outcome
      assert.equal(late.status === 'rejected' && late.reason, 'LB_ERR_CLIENT_ABORTED')
      assert.equal(queue.size, 0)
    })

    it('close() rejects everything pending with LB_ERR_SHED and refuses what comes after', async () => {
      const { clock, queue } = setup()
      const tickets = [0, -1, 3].map((priority) =>
        queue.enqueue({ value: `p${priority}`, priority }),
      )
      queue.close()
      for (const ticket of tickets) {
        const outcome = await ticket.outcome
        assert.equal(outcome.status === 'rejected' && outcome.reason, 'LB_ERR_SHED')
      }
      const after = await queue.enqueue({ value: 'late' }).outcome
      assert.equal(after.status === 'rejected' && after.reason, 'LB_ERR_SHED')
      assert.equal(queue.tryAdmit(), undefined)
      assert.equal(queue.size, 0)
      assert.equal(clock.pendingTimers, 0)
      queue.close()
    })
  })

  describe('tryAdmit', () => {
    it('skips entries the predicate cannot place now and admits a later one that fits', async () => {
      const { queue } = setup()
      const big = queue.enqueue({ value: 'big', sizeBytes: 1_000 })
      const small = queue.enqueue({ value: 'small', sizeBytes: 10 })
      const offered: string[] = []
      const admitted = queue.tryAdmit((entry) => {
        offered.push(entry.value)
        return entry.sizeBytes <= 100
      })
      assert.equal(admitted?.value, 'small')
      assert.deepEqual(offered, ['big', 'small'])
      assert.equal((await small.outcome).status, 'admitted')
      assert.equal(big.state, 'queued')
      assert.equal(queue.peek()?.value, 'big')
    })

    it('falls through to a lower band when no higher entry can be placed', () => {
      const { queue } = setup()
      queue.enqueue({ value: 'high-huge', priority: 5, predictedCost: 9_000 })
      queue.enqueue({ value: 'low-small', priority: 0, predictedCost: 10 })
      assert.equal(queue.tryAdmit((e) => e.predictedCost < 100)?.value, 'low-small')
      assert.equal(
        queue.tryAdmit((e) => e.predictedCost < 100),
        undefined,
      )
      assert.equal(queue.size, 1)
    })

    it('offers every tenant’s head before any tenant’s second entry', () => {
      const { queue } = setup()
      queue.enqueue({ value: 'a1', tenant: 'a' })
      queue.enqueue({ value: 'a2', tenant: 'a' })
      queue.enqueue({ value: 'b1', tenant: 'b' })
      queue.enqueue({ value: 'b2', tenant: 'b' })
      const offered: string[] = []
      queue.tryAdmit((entry) => {
        offered.push(entry.value)
        return false
      })
      assert.deepEqual(offered, ['a1', 'b1', 'a2', 'b2'])
    })

    it('offers every queued entry exactly once, the first being peek() (property)', () => {
      const entry = fc.record({
        priority: fc.integer({ min: -1, max: 1 }),
        tenant: fc.constantFrom('a', 'b', 'c'),
        predictedCost: fc.integer({ min: 1, max: 9 }),
        delayMs: fc.integer({ min: 0, max: 3_000 }),
      })
      fc.assert(
        fc.property(
          fc.array(entry, { maxLength: 40 }),
          fc.constantFrom('fifo' as const, 'shortest-predicted-first' as const),
          (entries, order) => {
            const clock = createManualClock()
            const queue = createAdmissionQueue<number>(
              { order, maxBypassMs: 1_000, maxScan: 1_000 },
              { clock },
            )
            entries.forEach((e, i) => {
              queue.enqueue({ value: i, ...e })
              clock.advance(e.delayMs % 200)
            })
            const offered: number[] = []
            const peeked = queue.peek()
            queue.tryAdmit((candidate) => {
              offered.push(candidate.value)
              return false
            })
            assert.deepEqual(
              [...offered].sort((x, y) => x - y),
              entries.map((_, i) => i),
            )
            assert.equal(offered[0], peeked?.value)
            assert.equal(queue.tryAdmit()?.value, peeked?.value)
          },
        ),
      )
    })

    it('stops after maxScan offers', () => {
      const { queue } = setup({ maxScan: 3 })
      for (let i = 0; i < 10; i++) queue.enqueue({ value: `e${i}` })
      let offers = 0
      const refuse = () => {
        offers++
        return false
      }
      assert.equal(queue.tryAdmit(refuse), undefined)
      assert.equal(offers, 3)
      assert.equal(queue.tryAdmit(refuse, { maxScan: 1 }), undefined)
      assert.equal(offers, 4)
    })

    it('stays consistent when the predicate itself changes the queue', () => {
      const { queue } = setup()
      const first = queue.enqueue({ value: 'first' })
      queue.enqueue({ value: 'second' })
      let cancelled = false
      const admitted = queue.tryAdmit((entry) => {
        if (!cancelled) {
          cancelled = true
          first.cancel()
          queue.enqueue({ value: 'third', priority: 1 })
          return true
        }
        return entry.value === 'third'
      })
      // `first` was cancelled under the walk, so the walk restarted and took the new head.
      assert.equal(admitted?.value, 'third')
      assert.equal(first.state, 'rejected')
      assert.deepEqual(drain(queue), ['second'])
    })
  })

  describe('observability', () => {
    it('reports depth per band and tenant, and counts outcomes by reason', () => {
      const { clock, queue } = setup({ maxEntries: 3 })
      queue.enqueue({ value: 'a', priority: 0, tenant: 't1', sizeBytes: 5 })
      queue.enqueue({ value: 'b', priority: 0, tenant: 't2', sizeBytes: 7 })
      queue.enqueue({ value: 'c', priority: -1, tenant: 't1', sizeBytes: 1, maxWaitMs: 50 })
      queue.enqueue({ value: 'd', priority: -1, tenant: 't1' }) // full, and t1 over its share: shed
      assert.deepEqual(queue.depth({ priority: 0 }), { count: 2, bytes: 12 })
      assert.deepEqual(queue.depth({ tenant: 't1' }), { count: 2, bytes: 6 })
      assert.deepEqual(queue.depth({ priority: 0, tenant: 't2' }), { count: 1, bytes: 7 })
      clock.advance(40)
      queue.tryAdmit()
      clock.advance(20)
      const stats = queue.stats()
      assert.equal(stats.count, 1)
      assert.equal(stats.bytes, 7)
      assert.equal(stats.enqueuedTotal, 4)
      assert.equal(stats.admittedTotal, 1)
      assert.deepEqual(stats.rejectedTotal, {
        LB_ERR_QUEUE_FULL: 0,
        LB_ERR_DEADLINE: 1,
        LB_ERR_SHED: 1,
        LB_ERR_CLIENT_ABORTED: 0,
      })
      assert.equal(stats.wait.count, 1)
      assert.equal(stats.wait.sumMs, 40)
      const le50 = stats.wait.bucketsMs.indexOf(50)
      assert.equal(stats.wait.cumulativeCounts[le50 - 1], 0)
      assert.equal(stats.wait.cumulativeCounts[le50], 1)
      assert.deepEqual(
        stats.bands.map((b) => [b.priority, b.count, b.tenants]),
        [[0, 1, 1]],
      )
    })

    it('predicts the wait at a priority from the queue ahead and the recent drain rate', () => {
      const { clock, queue } = setup({ defaultMaxWaitMs: 600_000 })
      assert.equal(queue.predictedWaitMs(0), 0)
      for (let i = 0; i < 20; i++) queue.enqueue({ value: `warm${i}` })
      assert.equal(queue.predictedWaitMs(0), Number.POSITIVE_INFINITY, 'nothing drained yet')
      // Drain 10 a second for a minute while arrivals keep 20 waiting.
      for (let tick = 0; tick < 600; tick++) {
        clock.advance(100)
        queue.tryAdmit()
        queue.enqueue({ value: `t${tick}` })
      }
      const waitMs = queue.predictedWaitMs(0)
      assert.ok(Math.abs(waitMs - 2_000) < 100, `expected about 2000 ms, got ${waitMs}`)
      assert.equal(queue.predictedWaitMs(1), 0, 'a higher band waits for nothing')
      queue.enqueue({ value: 'low', priority: -1, predictedCost: 5 })
      assert.ok(queue.predictedWaitMs(-1) > waitMs)
      assert.equal(queue.stats().bands[0]?.predictedWaitMs, queue.predictedWaitMs(0))
    })
  })
})
