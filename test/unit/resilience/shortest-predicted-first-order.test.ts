import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import type { AdmissionQueueOptions } from '../../../src/resilience/admission-types.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function setup(options: AdmissionQueueOptions = {}) {
  const clock = createManualClock()
  const queue = createAdmissionQueue<string>(
    { order: 'shortest-predicted-first', ...options },
    { clock },
  )
  return { clock, queue }
}

/**
 * Keeps a backlog of short jobs topped up: every 100 ms one short arrives and one entry is
 * admitted. Returns when `long` is admitted (its time) or rejected (undefined).
 */
function streamShortsUntil(
  setupResult: ReturnType<typeof setup>,
  long: { readonly state: string },
  limitMs: number,
): number | undefined {
  const { clock, queue } = setupResult
  for (let i = 0; i < 5; i++) queue.enqueue({ value: 'short', predictedCost: 1, maxWaitMs: 60_000 })
  while (clock.now() < limitMs) {
    clock.advance(100)
    queue.enqueue({ value: 'short', predictedCost: 1, maxWaitMs: 60_000 })
    const admitted = queue.tryAdmit()
    if (admitted?.value === 'long') return clock.now()
    if (long.state !== 'queued') return undefined
  }
  return undefined
}

describe('shortest predicted first', () => {
  it('admits the shortest predicted entry first, ties in arrival order', () => {
    const { queue } = setup()
    for (const [value, predictedCost] of [
      ['c-500', 500],
      ['a-10', 10],
      ['d-10', 10],
      ['b-50', 50],
    ] as const) {
      queue.enqueue({ value, predictedCost })
    }
    const order = Array.from({ length: 4 }, () => queue.tryAdmit()!.value)
    assert.deepEqual(order, ['a-10', 'd-10', 'b-50', 'c-500'])
  })

  it('admits a long job before its deadline under a stream of short ones', () => {
    const setupResult = setup({ maxBypassMs: 600_000, agingFraction: 0.5 })
    const long = setupResult.queue.enqueue({
      value: 'long',
      predictedCost: 1_000,
      maxWaitMs: 10_000,
    })
    const admittedAtMs = streamShortsUntil(setupResult, long, 20_000)
    assert.ok(admittedAtMs !== undefined, 'plain SJF would starve it until its deadline')
    // Shorter jobs pass it until half its allowed wait has gone, then it goes first.
    assert.equal(admittedAtMs, 5_000)
    assert.equal(long.state, 'admitted')
  })

  it('stops letting shorter jobs pass after maxBypassMs, even with no deadline', () => {
    const setupResult = setup({ maxBypassMs: 2_000 })
    const long = setupResult.queue.enqueue({
      value: 'long',
      predictedCost: 1_000,
      deadlineMs: Number.POSITIVE_INFINITY,
    })
    assert.equal(streamShortsUntil(setupResult, long, 20_000), 2_000)
  })

  it('orders urgent entries by when they turned urgent, ahead of any shorter one', () => {
    const { clock, queue } = setup({ maxBypassMs: 1_000 })
    queue.enqueue({ value: 'long-a', predictedCost: 900 })
    clock.advance(100)
    queue.enqueue({ value: 'long-b', predictedCost: 800 })
    clock.advance(1_000)
    queue.enqueue({ value: 'short', predictedCost: 1 })
    const order = Array.from({ length: 3 }, () => queue.tryAdmit()!.value)
    assert.deepEqual(order, ['long-a', 'long-b', 'short'])
  })

  it('sorts within each tenant while tenants still take fair turns', () => {
    const { queue } = setup()
    queue.enqueue({ value: 'a-big', tenant: 'a', predictedCost: 5 })
    queue.enqueue({ value: 'a-small', tenant: 'a', predictedCost: 1 })
    queue.enqueue({ value: 'b-big', tenant: 'b', predictedCost: 5 })
    queue.enqueue({ value: 'b-small', tenant: 'b', predictedCost: 1 })
    const order = Array.from({ length: 4 }, () => queue.tryAdmit()!.value)
    assert.deepEqual(order, ['a-small', 'b-small', 'a-big', 'b-big'])
  })
})
