import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDepartureWindow } from '../../../src/resilience/departure-window.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('departure window', () => {
  it('measures nothing until it has seen a full window of departures', () => {
    const clock = createManualClock()
    const window = createDepartureWindow({ size: 4 }, { clock, busyMs: () => clock.now() })
    for (let i = 0; i < 3; i++) {
      window.add(10)
      clock.advance(100)
    }
    assert.equal(window.costPerSecond(1_000), undefined)
    window.add(10)
    // Departures at 0, 100, 200, 300: 30 drained after the oldest, over 300 ms.
    assert.equal(window.costPerSecond(1_000), 100)
  })

  it('reads ever lower as the drain stalls, and nothing once the latest departure is stale', () => {
    const clock = createManualClock()
    const window = createDepartureWindow({ size: 2 }, { clock, busyMs: () => clock.now() })
    window.add(5)
    clock.advance(100)
    window.add(5)
    const fresh = window.costPerSecond(1_000)!
    clock.advance(400)
    assert.ok(window.costPerSecond(1_000)! < fresh)
    clock.advance(1_000)
    assert.equal(window.costPerSecond(1_000), undefined)
  })

  it('follows a rise in the drain within one window, where a decayed rate lags', () => {
    const clock = createManualClock()
    const window = createDepartureWindow({ size: 8 }, { clock, busyMs: () => clock.now() })
    for (let i = 0; i < 8; i++) {
      window.add(1)
      clock.advance(1_000) // one a second
    }
    for (let i = 0; i < 8; i++) {
      clock.advance(10) // a hundred a second
      window.add(1)
    }
    const perSecond = window.costPerSecond(1_000)!
    assert.ok(Math.abs(perSecond - 100) < 1, `got ${perSecond}`)
  })
})
