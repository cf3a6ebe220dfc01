import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDecayedSum } from '../../../src/util/decayed-sum.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('decayed sum', () => {
  it('counts each part half once a half-life has passed since it was added', () => {
    const clock = createManualClock()
    const sum = createDecayedSum({ halfLifeMs: 1_000 }, { clock })
    assert.equal(sum.value(), 0)
    sum.add(8)
    clock.advance(1_000)
    sum.add(4)
    assert.equal(sum.value(), 8)
    clock.advance(2_000)
    assert.equal(sum.value(), 2)
  })

  it('reads the same however often it is read', () => {
    const clock = createManualClock()
    const often = createDecayedSum({ halfLifeMs: 500 }, { clock })
    const once = createDecayedSum({ halfLifeMs: 500 }, { clock })
    often.add(100)
    once.add(100)
    for (let i = 0; i < 10; i++) {
      clock.advance(100)
      often.value()
    }
    assert.ok(Math.abs(often.value() - once.value()) < 1e-9)
    assert.ok(Math.abs(once.value() - 25) < 1e-9)
  })
})
