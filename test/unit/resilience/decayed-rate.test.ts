import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDecayedRate } from '../../../src/resilience/decayed-rate.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('decayed rate', () => {
  it('reads 0 before anything is added', () => {
    const rate = createDecayedRate({ halfLifeMs: 10_000 }, { clock: createManualClock() })
    assert.equal(rate.perSecond(), 0)
  })

  it('tracks a steady rate from the start, without the warm-up dip of a plain EWMA', () => {
    const clock = createManualClock()
    const rate = createDecayedRate({ halfLifeMs: 10_000 }, { clock })
    for (let i = 0; i < 300; i++) {
      rate.add(2)
      clock.advance(100)
      if (i === 29 || i === 299) {
        const perSecond = rate.perSecond()
        assert.ok(Math.abs(perSecond - 20) < 1.5, `expected about 20/s, got ${perSecond}`)
      }
    }
  })

  it('forgets a stopped source by half every half-life', () => {
    const clock = createManualClock()
    const rate = createDecayedRate({ halfLifeMs: 1_000 }, { clock })
    for (let i = 0; i < 100; i++) {
      rate.add(1)
      clock.advance(100)
    }
    const before = rate.perSecond()
    clock.advance(1_000)
    assert.ok(Math.abs(rate.perSecond() - before / 2) < 0.01)
  })
})
