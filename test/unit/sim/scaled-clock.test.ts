import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createScaledClock, type RealTimers } from '../../../src/sim/scaled-clock.ts'

function fakeReal() {
  let nowMs = 1000
  const timeouts: { atMs: number; fn: () => void; isCleared: boolean }[] = []
  const immediates: { fn: () => void; isCleared: boolean }[] = []
  const delays: number[] = []
  const real: RealTimers = {
    now: () => nowMs,
    wallNow: () => 1_700_000_000_000 + nowMs,
    setTimeout(fn, ms) {
      delays.push(ms)
      const t = { atMs: nowMs + ms, fn, isCleared: false }
      timeouts.push(t)
      return { clear: () => (t.isCleared = true) }
    },
    setImmediate(fn) {
      const t = { fn, isCleared: false }
      immediates.push(t)
      return { clear: () => (t.isCleared = true) }
    },
  }
  const tick = (ms: number) => {
    nowMs += ms
    for (const t of timeouts.splice(0))
      if (t.atMs <= nowMs && !t.isCleared) t.fn()
      else if (!t.isCleared) timeouts.push(t)
    for (const t of immediates.splice(0)) if (!t.isCleared) t.fn()
  }
  return { real, tick, delays }
}

describe('sim scaled clock', () => {
  it('runs engine time speedup times faster than real time, from zero', () => {
    const { real, tick } = fakeReal()
    const clock = createScaledClock({ speedup: 50 }, real)
    assert.equal(clock.now(), 0)
    tick(10)
    assert.equal(clock.now(), 500)
    assert.equal(clock.wallNow(), 1_700_000_001_000 + 500)
  })

  it('fires an engine-time timer after delay / speedup real milliseconds, never synchronously', () => {
    const { real, tick } = fakeReal()
    const clock = createScaledClock({ speedup: 10 }, real)
    let firedAtMs: number | undefined
    clock.setTimer(100, () => {
      firedAtMs = clock.now()
    })
    assert.equal(firedAtMs, undefined)
    for (let i = 0; i < 20 && firedAtMs === undefined; i++) tick(1)
    assert.equal(firedAtMs, 100)
  })

  it('waits a delay past the longest Node timer in stretches Node can keep, and fires on time', () => {
    const { real, tick, delays } = fakeReal()
    const clock = createScaledClock({ speedup: 1 }, real)
    let firedAtMs: number | undefined
    const delayMs = 2 ** 32
    clock.setTimer(delayMs, () => {
      firedAtMs = clock.now()
    })
    for (let i = 0; i < 4 && firedAtMs === undefined; i++) tick(2 ** 31 - 1)
    tick(10)
    assert.ok(
      delays.every((ms) => ms <= 2 ** 31 - 1),
      `asked Node for ${delays.filter((ms) => ms > 2 ** 31 - 1)}`,
    )
    assert.ok(firedAtMs !== undefined && firedAtMs >= delayMs, `fired at ${firedAtMs}`)
  })

  it('fires a due timer on the next turn and honours clear()', () => {
    const { real, tick } = fakeReal()
    const clock = createScaledClock({ speedup: 1000 }, real)
    let fired = 0
    clock.setTimer(0, () => fired++)
    clock.setTimer(5, () => fired++).clear()
    assert.equal(fired, 0)
    tick(0)
    tick(1)
    assert.equal(fired, 1)
  })

  it('refuses a non-positive speedup', () => {
    assert.throws(() => createScaledClock({ speedup: 0 }))
  })
})
