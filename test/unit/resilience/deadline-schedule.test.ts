import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import type { Clock } from '../../../src/util/clock.ts'
import { MAX_TIMER_MS } from '../../../src/util/clock.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('deadline schedule', () => {
  it('never asks for a timer longer than Node keeps, and still expires a far deadline', async () => {
    const manual = createManualClock(0.25) // fractional, as performance.now() is
    const delays: number[] = []
    const clock: Clock = {
      ...manual,
      setTimer(delayMs, fn) {
        delays.push(delayMs)
        return manual.setTimer(delayMs, fn)
      },
    }
    const queue = createAdmissionQueue<string>({ defaultMaxWaitMs: 3_000_000_000 }, { clock })
    const ticket = queue.enqueue({ value: 'far' })
    assert.ok(
      delays.every((d) => d <= MAX_TIMER_MS),
      `delays: ${delays.join(', ')}`,
    )
    manual.advance(MAX_TIMER_MS)
    assert.equal(ticket.state, 'queued', 'an early firing expires nothing')
    manual.advance(3_000_000_000 - MAX_TIMER_MS)
    assert.equal(ticket.state, 'rejected')
    assert.equal((await ticket.outcome).status, 'rejected')
    assert.ok(
      delays.every((d) => d <= MAX_TIMER_MS),
      `delays: ${delays.join(', ')}`,
    )
  })
})
