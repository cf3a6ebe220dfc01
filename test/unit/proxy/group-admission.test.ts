import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { UpstreamGroup } from '../../../src/balancer/upstream-group.ts'
import { type AdmissionResult, createGroupAdmission } from '../../../src/proxy/group-admission.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const config = {
  ttftSloMs: 1000,
  maxPending: 2,
  maxPendingBytes: 1 << 20,
  maxWaitMs: 500,
  order: 'fifo' as const,
  maxBypassMs: 5_000,
  agingFraction: 0.5,
  shedSheddable: true,
  shedEarly: false,
  fairShareEviction: true,
  recheckMs: 10,
  tenantKey: { apiKey: true as const },
  holdForUrgent: false,
  classes: {} as Record<string, { ttftSloMs?: number; maxWaitMs?: number }>,
}

function fakeGroup(
  free: { slots: number },
  endpoints: { count: number } = { count: 1 },
): UpstreamGroup {
  return {
    canTake: () => free.slots > 0,
    eligible: () => Array.from({ length: endpoints.count }),
    queued: () => {},
  } as unknown as UpstreamGroup
}

const ask = (priority = 0, sheddable = false) => ({
  ctx: { attempt: 0 },
  priority,
  sheddable,
  tenant: '',
  sizeBytes: 10,
  predictedCost: 100,
  signal: new AbortController().signal,
})

describe('group admission (late binding)', () => {
  test('admits at once while the policy can place the request and nothing waits', () => {
    const admission = createGroupAdmission(fakeGroup({ slots: 1 }), config, {
      clock: createManualClock(),
    })
    assert.deepEqual(admission.acquire(ask()), { admitted: true, waitedMs: 0 })
    admission.close()
  })

  test('holds a request until capacity frees, then binds it', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(fakeGroup(free), config, { clock })
    const pending = admission.acquire(ask())
    assert.ok(pending instanceof Promise)
    clock.advance(100)
    free.slots = 1
    admission.notify()
    assert.deepEqual(await pending, { admitted: true, waitedMs: 100 })
    admission.close()
  })

  test('rechecks on a timer while requests wait, without a notify', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(fakeGroup(free), config, { clock })
    const pending = admission.acquire(ask())
    free.slots = 1
    clock.advance(10)
    assert.equal((await pending).admitted, true)
    admission.close()
  })

  test('rejects with LB_ERR_DEADLINE and a Retry-After hint once the wait runs out', async () => {
    const clock = createManualClock()
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }), config, { clock })
    const pending = admission.acquire(ask())
    clock.advance(600)
    const result = await pending
    assert.equal(result.admitted, false)
    assert.ok(
      !result.admitted && result.reason === 'LB_ERR_DEADLINE' && result.retryAfterMs >= 1000,
    )
    admission.close()
  })

  test('with no eligible endpoint, waits for nothing: new and queued requests go on at once', async () => {
    const clock = createManualClock()
    const endpoints = { count: 1 }
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }, endpoints), config, { clock })
    const queued = admission.acquire(ask())
    assert.ok(queued instanceof Promise)
    endpoints.count = 0
    assert.deepEqual(admission.acquire(ask()), { admitted: true, waitedMs: 0 })
    admission.notify()
    assert.equal((await queued).admitted, true)
    assert.equal(admission.stats().count, 0)
    admission.close()
  })

  test('a queue that replaced another on reload lets the old one’s waiters go when capacity frees', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const old = createGroupAdmission(fakeGroup(free), { ...config, recheckMs: 10_000 }, { clock })
    const waitingInOld = old.acquire(ask())
    assert.equal(old.waiting, 1)
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    const waitingInNew = replacement.acquire(ask())
    free.slots = 1
    // Capacity frees: requests finishing now notify only the queue the new config built.
    replacement.notify()
    assert.equal(old.waiting, 0, 'not left for its own 10-s recheck')
    assert.equal((await waitingInOld).admitted, true)
    // The old waiter binds and notifies; then the new one is judged.
    replacement.notify()
    assert.equal((await waitingInNew).admitted, true)
    old.close()
    replacement.close()
  })

  test('with holdForUrgent, an urgent request that cannot go yet has an endpoint held: the ones behind it go elsewhere', () => {
    const clock = createManualClock()
    // Two endpoints; e0 has the most KV room. The long prompt fits nowhere yet; short ones fit
    // anywhere.
    const endpoints = [
      { id: 'e0', kvTokens: 100 },
      { id: 'e1', kvTokens: 900 },
    ]
    const group = {
      eligible: () => endpoints,
      queued: () => {},
      canTake: (ctx: { llm?: { promptTokens: number } }, _slo: number, without?: string) =>
        (ctx.llm?.promptTokens ?? 0) < 1000 && endpoints.some((e) => e.id !== without),
    } as unknown as UpstreamGroup
    const results: Array<{ name: string; admitted: boolean; avoid?: string | undefined }> = []
    const admission = createGroupAdmission(
      group,
      { ...config, maxPending: 8, maxWaitMs: 60_000, holdForUrgent: true },
      { clock },
    )
    const asks = (name: string, promptTokens: number) => ({
      ...ask(),
      ctx: { attempt: 0, llm: { promptTokens } as never },
      predictedCost: promptTokens,
      onResult: (r: AdmissionResult) => {
        results.push({ name, admitted: r.admitted, avoid: r.admitted ? r.avoid : undefined })
      },
    })
    void admission.acquire(asks('long', 5000))
    void admission.acquire(asks('short-early', 10))
    admission.notify()
    // Not urgent yet: the short one passes it and may go anywhere.
    assert.deepEqual(results, [{ name: 'short-early', admitted: true, avoid: undefined }])
    clock.advance(30_000) // past the aging bound (the earlier of 5 s and half its deadline)
    void admission.acquire(asks('short-late', 10))
    admission.notify()
    assert.deepEqual(results[1], { name: 'short-late', admitted: true, avoid: 'e0' })
    admission.close()
  })

  test('sheds sheddable work at once under saturation when configured', () => {
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }), config, {
      clock: createManualClock(),
    })
    const result = admission.acquire(ask(-1, true))
    assert.ok(!(result instanceof Promise) && !result.admitted && result.reason === 'LB_ERR_SHED')
    admission.close()
  })

  test('refuses past maxPending with LB_ERR_QUEUE_FULL', async () => {
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }), config, {
      clock: createManualClock(),
    })
    void admission.acquire(ask())
    void admission.acquire(ask())
    const third = await admission.acquire(ask())
    assert.ok(!third.admitted && third.reason === 'LB_ERR_QUEUE_FULL')
    admission.close()
  })

  test('lets one awaiting request go per drain, so each binds before the next is judged', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(fakeGroup(free), { ...config, maxPending: 8 }, { clock })
    const pending = [admission.acquire(ask()), admission.acquire(ask()), admission.acquire(ask())]
    // Room for one, but the policy's accounting only sees a request once it is bound.
    free.slots = 1
    admission.notify()
    assert.equal(admission.stats().count, 2)
    assert.equal((await pending[0])?.admitted, true)
    // The first binds (it takes the slot) and tells the queue, which re-judges the rest.
    free.slots = 0
    admission.notify()
    assert.equal(admission.stats().count, 2)
    admission.close()
  })

  test('settles a waiting request through onResult synchronously, for virtual time', () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(fakeGroup(free), { ...config, maxPending: 8 }, { clock })
    const results: unknown[] = []
    const bound: number[] = []
    for (let i = 0; i < 3; i++) {
      void admission.acquire({
        ...ask(),
        onResult: (result) => {
          results.push(result)
          // A synchronous consumer binds inside the callback: it takes a slot.
          if (result.admitted) {
            free.slots--
            bound.push(i)
          }
        },
      })
    }
    free.slots = 2
    admission.notify()
    assert.deepEqual(bound, [0, 1])
    assert.equal(results.length, 2)
    clock.advance(600)
    assert.equal(results.length, 3)
    assert.deepEqual(results[2], {
      admitted: false,
      reason: 'LB_ERR_DEADLINE',
      retryAfterMs: (results[2] as { retryAfterMs: number }).retryAfterMs,
    })
    admission.close()
  })
})

describe('group admission: telling the policy', () => {
  test('tells the group each request it queues, once, and not those it refuses or admits at once', () => {
    const free = { slots: 1 }
    const queued: unknown[] = []
    const group = {
      ...fakeGroup(free),
      queued: (ctx: unknown) => queued.push(ctx),
    } as unknown as UpstreamGroup
    const admission = createGroupAdmission(group, config, { clock: createManualClock() })
    assert.deepEqual(admission.acquire(ask()), { admitted: true, waitedMs: 0 })
    free.slots = 0
    const first = ask()
    const second = ask()
    void admission.acquire(first)
    void admission.acquire(second) // queued behind the first, without the policy being asked
    admission.notify()
    void admission.acquire(ask(-1, true)) // shed at the door
    void admission.acquire(ask()) // the queue is full (maxPending 2): refused at once
    assert.deepEqual(queued, [first.ctx, second.ctx])
    admission.close()
  })
})

describe('group admission: refusals at the door', () => {
  test('sheds with a Retry-After of whole seconds within [1 s, 60 s], never Infinity', () => {
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }), config, {
      clock: createManualClock(),
    })
    // Something waits and nothing has left yet: the predicted wait is Infinity.
    void admission.acquire(ask())
    const result = admission.acquire(ask(-1, true))
    assert.ok(!(result instanceof Promise) && !result.admitted)
    assert.equal(result.retryAfterMs, 60_000)
    admission.close()
  })

  test('counts sheds at the door in rejectedTotal', () => {
    const admission = createGroupAdmission(fakeGroup({ slots: 0 }), config, {
      clock: createManualClock(),
    })
    for (let i = 0; i < 3; i++) void admission.acquire(ask(-1, true))
    assert.equal(admission.stats().rejectedTotal.LB_ERR_SHED, 3)
    admission.close()
  })

  test('with shedEarly, refuses at once a request the recent drain says would miss its deadline', async () => {
    for (const shedEarly of [false, true]) {
      const clock = createManualClock()
      const free = { slots: 0 }
      const admission = createGroupAdmission(
        fakeGroup(free),
        { ...config, maxPending: 1000, maxWaitMs: 500, shedEarly },
        { clock },
      )
      const bindAt = { onResult: (r: AdmissionResult) => r.admitted && free.slots-- }
      // A cold queue has no measurement: however long it is, requests wait their turn.
      for (let i = 0; i < 200; i++) void admission.acquire({ ...ask(), ...bindAt })
      assert.equal(admission.waiting, 200)
      // It drains one request (cost 100) every 10 ms: 10 000 a second, with 180 queued ahead
      // (about 1.8 s, against a deadline of 500 ms).
      for (let tick = 0; tick < 20; tick++) {
        clock.advance(10)
        free.slots = 1
        admission.notify()
      }
      free.slots = 0
      const late = admission.acquire({ ...ask(), ...bindAt })
      if (!shedEarly) {
        assert.ok(late instanceof Promise)
      } else {
        assert.ok(!(late instanceof Promise), 'refused at once')
        assert.ok(!late.admitted && late.reason === 'LB_ERR_DEADLINE')
        assert.ok(late.retryAfterMs >= 1000 && late.retryAfterMs % 1000 === 0)
        assert.equal(admission.stats().rejectedTotal.LB_ERR_DEADLINE, 1)
      }
      admission.close()
      await late
    }
  })

  test('with shedEarly, a queue that drains fast enough keeps taking requests', () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(
      fakeGroup(free),
      { ...config, maxPending: 1000, maxWaitMs: 500, shedEarly: true },
      { clock },
    )
    const bindAt = { onResult: (r: AdmissionResult) => r.admitted && free.slots-- }
    for (let i = 0; i < 30; i++) void admission.acquire({ ...ask(), ...bindAt })
    for (let tick = 0; tick < 20; tick++) {
      clock.advance(10)
      free.slots = 1
      admission.notify()
    }
    // 10 queued ahead at 100 a second each: about 100 ms, well within 500.
    assert.ok(admission.acquire({ ...ask(), ...bindAt }) instanceof Promise)
    admission.close()
  })

  test('with shedEarly, the idle spells between short bursts do not count as a slow drain', () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(
      fakeGroup(free),
      { ...config, maxPending: 1000, maxWaitMs: 500, recheckMs: 10_000, shedEarly: true },
      { clock },
    )
    const bindAt = { onResult: (r: AdmissionResult) => r.admitted && free.slots-- }
    // Every 400 ms two requests wait 5 ms, then both go: while anything waits, the queue drains
    // 200 in 5 ms (40 000 a second); the queue is empty the rest of the time.
    for (let burst = 0; burst < 10; burst++) {
      free.slots = 0
      void admission.acquire({ ...ask(), ...bindAt })
      void admission.acquire({ ...ask(), ...bindAt })
      clock.advance(5)
      free.slots = 2
      admission.notify()
      clock.advance(395)
    }
    assert.equal(admission.waiting, 0)
    // The next burst: ten queued ahead (1 000) would take some 25 ms at that rate, far within
    // 500. Measured over wall time, idle spells included, it read 470 a second (over 2 s): shed.
    free.slots = 0
    for (let i = 0; i < 11; i++) {
      assert.ok(admission.acquire({ ...ask(), ...bindAt }) instanceof Promise, `request ${i}`)
    }
    admission.close()
  })
})

describe('group admission: the queue a reload replaced', () => {
  const replaced = (free: { slots: number }) => {
    const clock = createManualClock()
    const old = createGroupAdmission(fakeGroup(free), { ...config, recheckMs: 10_000 }, { clock })
    return { clock, old }
  }

  test('does not let a newcomer go at once while the old queue still has waiters', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    const first = old.acquire(ask())
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    free.slots = 1
    const newcomer = replacement.acquire(ask())
    assert.ok(newcomer instanceof Promise, 'queued behind the old waiter')
    replacement.notify()
    assert.equal((await first).admitted, true, 'the earlier arrival goes first')
    assert.equal(replacement.waiting, 1, 'the newcomer waits for the old one to bind')
    free.slots = 0 // the old waiter bound and took the slot
    replacement.notify()
    assert.equal(replacement.waiting, 1)
    free.slots = 1
    replacement.notify()
    assert.equal((await newcomer).admitted, true)
    replacement.close()
  })

  test('passes freed capacity to the old queue even when the new one is empty', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    const first = old.acquire(ask())
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    free.slots = 1
    replacement.notify()
    assert.equal((await first).admitted, true)
    replacement.close()
  })

  test('keeps counting the refusals of the queue it replaced, after that queue is gone', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const old = createGroupAdmission(fakeGroup(free), config, { clock })
    const expired = old.acquire(ask())
    clock.advance(600)
    assert.equal((await expired).admitted, false)
    assert.equal(old.stats().rejectedTotal.LB_ERR_DEADLINE, 1)
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    free.slots = 1
    replacement.notify()
    const late = replacement.acquire(ask())
    assert.deepEqual(late, { admitted: true, waitedMs: 0 }, 'the old queue is drained and gone')
    free.slots = 0
    const another = replacement.acquire(ask())
    clock.advance(600)
    assert.equal((await another).admitted, false)
    assert.equal(replacement.stats().rejectedTotal.LB_ERR_DEADLINE, 2)
    replacement.close()
  })

  test('predicts a finite wait from the old queue’s drain rate before it has drained any itself', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    for (let i = 0; i < 4; i++) {
      const waiter = old.acquire(ask())
      clock.advance(100)
      free.slots = 1
      old.notify()
      assert.equal((await waiter).admitted, true)
      free.slots = 0
    }
    const oldWaiter = old.acquire(ask())
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    const newcomer = replacement.acquire(ask())
    assert.ok(newcomer instanceof Promise)
    assert.ok(old.drainCostPerSecond() > 0)
    assert.equal(replacement.drainCostPerSecond(), old.drainCostPerSecond())
    const waitMs = replacement.predictedWaitMs(0)
    assert.ok(Number.isFinite(waitMs) && waitMs > 0, `predicted ${waitMs} ms`)
    assert.ok(Number.isFinite(replacement.stats().bands[0]!.predictedWaitMs))
    replacement.close()
    await oldWaiter
    await newcomer
  })

  test('a request that asks the old queue after the reload waits in the new one, seen and closed with it', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    const replacement = createGroupAdmission(fakeGroup(free), config, { clock }, old)
    const before = replacement.acquire(ask())
    // A drain finds the old queue empty and lets it go.
    replacement.notify()
    // Its body read before the reload, this request holds the old runtime's queue.
    const late = old.acquire(ask())
    assert.equal(replacement.waiting, 2)
    assert.equal(replacement.stats().count, 2)
    replacement.close()
    for (const waiter of [before, late]) {
      const result = await waiter
      assert.ok(!result.admitted && result.reason === 'LB_ERR_SHED')
    }
  })

  test('capacity freed by a request placed before the reload reaches the new queue', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    const replacement = createGroupAdmission(
      fakeGroup(free),
      { ...config, recheckMs: 10_000 },
      { clock },
      old,
    )
    const waiter = replacement.acquire(ask())
    free.slots = 1
    // The request placed before the reload finishes: it tells the queue of its own runtime.
    old.notify()
    assert.equal(replacement.waiting, 0)
    assert.equal((await waiter).admitted, true)
    replacement.close()
  })

  test('counts the old queue’s waiters in its depth, and closes it with itself', async () => {
    const free = { slots: 0 }
    const { clock, old } = replaced(free)
    const oldWaiters = [old.acquire(ask(0)), old.acquire(ask(-1))]
    const replacement = createGroupAdmission(
      fakeGroup(free),
      { ...config, maxPending: 8 },
      { clock },
      old,
    )
    void replacement.acquire(ask(0))
    assert.equal(replacement.waiting, 3)
    const stats = replacement.stats()
    assert.equal(stats.count, 3)
    assert.equal(stats.bytes, 30)
    assert.deepEqual(
      stats.bands.map((b) => [b.priority, b.count]),
      [
        [0, 2],
        [-1, 1],
      ],
    )
    replacement.close()
    for (const waiter of oldWaiters) {
      const result = await waiter
      assert.ok(!result.admitted && result.reason === 'LB_ERR_SHED')
    }
    assert.equal(old.waiting, 0)
  })
})

describe('group admission: strict priority across bands', () => {
  // Two endpoints, 1000 KV tokens each. A request fits where its tokens fit in what is free.
  const kvGroup = (used: Record<string, number>) =>
    ({
      eligible: () => Object.entries(used).map(([id, kvTokens]) => ({ id, kvTokens })),
      queued: () => {},
      canTake: (ctx: { llm?: { promptTokens: number } }, _slo: number, without?: string) =>
        Object.entries(used).some(
          ([id, kv]) => id !== without && kv + (ctx.llm?.promptTokens ?? 0) <= 1000,
        ),
    }) as unknown as UpstreamGroup
  const asks = (
    results: Array<{ name: string; avoid?: string | undefined }>,
    name: string,
    priority: number,
    promptTokens: number,
  ) => ({
    ...ask(priority, priority < 0),
    ctx: { attempt: 0, llm: { promptTokens } as never },
    predictedCost: promptTokens,
    onResult: (r: AdmissionResult) => {
      if (r.admitted) results.push({ name, avoid: r.avoid })
    },
  })
  const settings = { ...config, maxPending: 64, maxWaitMs: 60_000, shedSheddable: false }
  // As the upstream group judges (canTakeFor): a sticky-bound request on its endpoint alone.
  const boundKvGroup = (used: Record<string, number>) =>
    ({
      eligible: () => Object.entries(used).map(([id, kvTokens]) => ({ id, kvTokens })),
      queued: () => {},
      canTake: (
        ctx: { llm?: { promptTokens: number }; boundTo?: string },
        _slo: number,
        without?: string,
      ) =>
        Object.entries(used).some(
          ([id, kv]) =>
            id !== without &&
            (ctx.boundTo === undefined || ctx.boundTo === id) &&
            kv + (ctx.llm?.promptTokens ?? 0) <= 1000,
        ),
    }) as unknown as UpstreamGroup

  test('a refused request of a higher band holds an endpoint: lower bands go only elsewhere', () => {
    const used = { e0: 100, e1: 950 }
    const admission = createGroupAdmission(kvGroup(used), settings, { clock: createManualClock() })
    const results: Array<{ name: string; avoid?: string | undefined }> = []
    void admission.acquire(asks(results, 'interactive-long', 0, 950))
    void admission.acquire(asks(results, 'batch-a', -1, 40))
    void admission.acquire(asks(results, 'batch-b', -1, 100))
    admission.notify()
    // batch-a fits on e1 and goes there; batch-b fits only on e0, which is held for the
    // interactive request, so it waits.
    assert.deepEqual(results, [{ name: 'batch-a', avoid: 'e0' }])
    // e0 drains: the interactive request goes, then batch-b may use what is left.
    used.e0 = 0
    admission.notify()
    assert.deepEqual(results[1], { name: 'interactive-long', avoid: undefined })
    admission.close()
  })

  test('a refused request a sticky binding sends to one endpoint holds that endpoint, not the roomiest', () => {
    const used: Record<string, number> = { e0: 100, e1: 900 }
    const group = boundKvGroup(used)
    const admission = createGroupAdmission(group, settings, { clock: createManualClock() })
    const results: Array<{ name: string; avoid?: string | undefined }> = []
    const bound = asks(results, 'interactive-bound', 0, 200)
    void admission.acquire({ ...bound, ctx: { ...bound.ctx, boundTo: 'e1' } })
    void admission.acquire(asks(results, 'batch', -1, 50))
    admission.notify()
    // The batch request fits on either; e1 is held for the bound one, so it goes to e0.
    assert.deepEqual(results, [{ name: 'batch', avoid: 'e1' }])
    admission.close()
  })

  test('keeps a lower band from taking, one at a time, the room a higher one waits for', () => {
    const used = { e0: 500 }
    const admission = createGroupAdmission(kvGroup(used), settings, { clock: createManualClock() })
    const results: Array<{ name: string; avoid?: string | undefined }> = []
    void admission.acquire(asks(results, 'interactive', 0, 600))
    for (let i = 0; i < 20; i++) void admission.acquire(asks(results, `batch-${i}`, -1, 100))
    admission.notify()
    assert.equal(results.length, 0, 'no batch request passes the interactive one')
    used.e0 = 300
    admission.notify()
    assert.equal(results[0]?.name, 'interactive', 'the room that freed went to it first')
    admission.close()
  })

  test('within one band, passing stays work-conserving without holdForUrgent', () => {
    const used = { e0: 100, e1: 950 }
    const clock = createManualClock()
    const admission = createGroupAdmission(kvGroup(used), settings, { clock })
    const results: Array<{ name: string; avoid?: string | undefined }> = []
    void admission.acquire(asks(results, 'long', 0, 950))
    clock.advance(40_000) // well past its aging bound
    void admission.acquire(asks(results, 'short', 0, 100))
    admission.notify()
    assert.deepEqual(results, [{ name: 'short', avoid: undefined }])
    admission.close()
  })

  test('sheds sheddable work only when it has nowhere to go, not because another request waits', async () => {
    const used: Record<string, number> = { e0: 100, e1: 900 }
    const group = boundKvGroup(used)
    const clock = createManualClock()
    const admission = createGroupAdmission(
      group,
      { ...settings, shedSheddable: true, recheckMs: 10_000 },
      { clock },
    )
    const results: Array<{ name: string; avoid?: string | undefined }> = []
    // A session waits for its own busy endpoint, e1; e0 is nearly idle.
    const bound = asks(results, 'session', 0, 200)
    void admission.acquire({ ...bound, ctx: { ...bound.ctx, boundTo: 'e1' } })
    const batch = admission.acquire(asks(results, 'batch', -1, 50))
    assert.ok(batch instanceof Promise, 'queued behind the higher band, not shed')
    // Interactive work that could go now does not sit out the 10-s recheck either.
    void admission.acquire(asks(results, 'interactive', 0, 50))
    clock.advance(0)
    assert.deepEqual(
      results.map((r) => r.name),
      ['interactive', 'batch'],
    )
    assert.equal((await batch).admitted, true)
    // A sheddable request that fits nowhere is shed at once.
    const tooBig = admission.acquire(asks(results, 'batch-huge', -1, 950))
    assert.ok(!(tooBig instanceof Promise) && !tooBig.admitted && tooBig.reason === 'LB_ERR_SHED')
    admission.close()
  })

  test('a priority class with its own SLO is judged by it', () => {
    // Any endpoint would start the request in 3 s: too slow for the default SLO, not for batch.
    const group = {
      canTake: (_ctx: unknown, ttftSloMs: number) => ttftSloMs >= 3000,
      eligible: () => [{}],
      queued: () => {},
    } as unknown as UpstreamGroup
    const admission = createGroupAdmission(
      group,
      { ...config, classes: { batch: { ttftSloMs: 5000 } } },
      { clock: createManualClock() },
    )
    assert.deepEqual(admission.acquire({ ...ask(), className: 'batch' }), {
      admitted: true,
      waitedMs: 0,
    })
    const interactive = admission.acquire({ ...ask(), className: 'interactive' })
    assert.ok(interactive instanceof Promise, 'the default SLO holds the other class')
    admission.close()
  })

  test('a priority class with its own longest wait outlasts the default deadline', async () => {
    const clock = createManualClock()
    const free = { slots: 0 }
    const admission = createGroupAdmission(
      fakeGroup(free),
      { ...config, classes: { batch: { maxWaitMs: 5000 } } },
      { clock },
    )
    const interactive = admission.acquire({ ...ask(), className: 'interactive' })
    const batch = admission.acquire({ ...ask(-1), className: 'batch' })
    clock.advance(600)
    const late = await interactive
    assert.equal(late.admitted, false)
    assert.equal(!late.admitted && late.reason, 'LB_ERR_DEADLINE')
    clock.advance(3000)
    free.slots = 1
    admission.notify()
    assert.deepEqual(await batch, { admitted: true, waitedMs: 3600 })
    admission.close()
  })
})
