import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRequestRateWindow } from '../../../src/llm/request-rate-window.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('request rate window', () => {
  it('reports requests per second over the window', () => {
    const clock = createManualClock()
    const rates = createRequestRateWindow({ windowMs: 60_000 }, { clock })
    for (let i = 0; i < 30; i++) rates.record('e0')
    assert.equal(rates.rate('e0'), 0.5)
    assert.equal(rates.rate('never'), 0)
  })

  it('lets requests leave the window a bucket at a time', () => {
    const clock = createManualClock()
    const rates = createRequestRateWindow({ windowMs: 10_000, buckets: 10 }, { clock })
    rates.record('e0')
    clock.advance(5_000)
    rates.record('e0')
    clock.advance(5_000)
    assert.equal(rates.rate('e0'), 0.1, 'the first request has left')
    clock.advance(5_000)
    assert.equal(rates.rate('e0'), 0)
  })

  it('reuses a bucket slot once its time has come round again', () => {
    const clock = createManualClock()
    const rates = createRequestRateWindow({ windowMs: 4_000, buckets: 4 }, { clock })
    for (let i = 0; i < 8; i++) rates.record('e0')
    clock.advance(4_000)
    rates.record('e0')
    assert.equal(rates.rate('e0'), 0.25)
  })
})
