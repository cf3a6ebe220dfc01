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
  shedSheddable: true,
  recheckMs: 10,
  tenantKey: { apiKey: true as const },
  holdForUrgent: false,
}

function fakeGroup(
  free: { slots: number },
  endpoints: { count: number } = { count: 1 },
): UpstreamGroup {
  return {
    canTake: () => free.slots > 0,
    eligible: () => Array.from({ length: endpoints.count }),
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
