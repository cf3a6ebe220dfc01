import type { Clock, Timer } from './clock.ts'

interface PendingTimer {
  readonly atMs: number
  readonly seq: number
  readonly fn: () => void
  cancelled: boolean
}

/** A Clock whose time moves only when told: for tests and discrete-event simulation. */
export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in deadline order. */
  advance(deltaMs: number): void
  /** Fires the earliest pending timer, moving time to it. Returns false when none is pending. */
  runNext(): boolean
  readonly pendingTimers: number
}

export function createManualClock(startMs = 0, wallStartMs = 1_700_000_000_000): ManualClock {
  let nowMs = startMs
  let seq = 0
  let timers: PendingTimer[] = []

  const popDue = (limitMs: number): PendingTimer | undefined => {
    let best: PendingTimer | undefined
    let bestIndex = -1
    for (let i = 0; i < timers.length; i++) {
      const t = timers[i]!
      if (t.cancelled || t.atMs > limitMs) continue
      if (!best || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq)) {
        best = t
        bestIndex = i
      }
    }
    if (best) timers.splice(bestIndex, 1)
    return best
  }

  return {
    now: () => nowMs,
    wallNow: () => wallStartMs + nowMs,
    setTimer(delayMs: number, fn: () => void): Timer {
      const timer: PendingTimer = {
        atMs: nowMs + Math.max(0, delayMs),
        seq: seq++,
        fn,
        cancelled: false,
      }
      timers.push(timer)
      return {
        clear: () => {
          timer.cancelled = true
        },
      }
    },
    advance(deltaMs: number) {
      const target = nowMs + deltaMs
      for (let t = popDue(target); t; t = popDue(target)) {
        nowMs = t.atMs
        t.fn()
      }
      nowMs = target
      timers = timers.filter((t) => !t.cancelled)
    },
    runNext() {
      const t = popDue(Number.POSITIVE_INFINITY)
      if (!t) return false
      nowMs = Math.max(nowMs, t.atMs)
      t.fn()
      return true
    },
    get pendingTimers() {
      return timers.filter((t) => !t.cancelled).length
    },
  }
}
