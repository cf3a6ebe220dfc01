import { type Clock, MAX_TIMER_MS, type Timer } from '../util/clock.ts'
import { createIndexedHeap } from './indexed-heap.ts'
import type { QueuedEntry } from './queued-entry.ts'

/**
 * The deadlines of every queued entry, with one timer for the earliest rather than one per entry:
 * a queue of thousands holds one timer. When the earliest entry leaves early the timer is kept:
 * it fires early, expires nothing and re-arms for the new earliest (or lapses), which is cheaper
 * than re-arming on every removal. The queue also calls `expireDue` before it admits, so an
 * entry whose deadline has passed is never admitted even when the timer runs late.
 */
export interface DeadlineSchedule<T> {
  add(entry: QueuedEntry<T>): void
  delete(entry: QueuedEntry<T>): void
  has(entry: QueuedEntry<T>): boolean
  /**
   * Hands every entry whose deadline is at or before now to `onExpired`, earliest first, in one
   * batch: entries expiring together are told one wait, not each a wait counting the others.
   */
  expireDue(): void
  /** Ensures a timer fires no later than the earliest deadline. */
  rearm(): void
  close(): void
}

export function createDeadlineSchedule<T>(
  onExpired: (due: readonly QueuedEntry<T>[]) => void,
  deps: { readonly clock: Clock },
): DeadlineSchedule<T> {
  const { clock } = deps
  const heap = createIndexedHeap<QueuedEntry<T>>(
    (a, b) => a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.seq < b.seq),
    {
      get: (e) => e.deadlineSlot,
      set: (e, i) => {
        e.deadlineSlot = i
      },
    },
  )
  let timer: Timer | undefined
  let timerAtMs = Number.POSITIVE_INFINITY

  const clear = (): void => {
    timer?.clear()
    timer = undefined
    timerAtMs = Number.POSITIVE_INFINITY
  }

  const expireDue = (): void => {
    const nowMs = clock.now()
    const head = heap.peek()
    if (head === undefined || head.deadlineMs > nowMs) return
    const due: QueuedEntry<T>[] = []
    for (let next = heap.peek(); next && next.deadlineMs <= nowMs; next = heap.peek()) {
      due.push(next)
      heap.delete(next)
    }
    onExpired(due)
  }

  const rearm = (): void => {
    const atMs = heap.peek()?.deadlineMs ?? Number.POSITIVE_INFINITY
    // A pending timer at or before the earliest deadline will do, even with nothing left to
    // expire: it fires once and lapses, where clearing and re-arming it each time the queue
    // drains and refills (every request, at low load) would churn a timer per request.
    if (timer !== undefined && timerAtMs <= atMs) return
    if (!Number.isFinite(atMs)) return
    clear()
    // Node fires a longer timer after 1 ms (TimeoutOverflowWarning), which would spin: cap it,
    // and a far deadline takes a few early firings that expire nothing and re-arm.
    const nowMs = clock.now()
    const delayMs = Math.min(atMs - nowMs, MAX_TIMER_MS)
    timerAtMs = nowMs + delayMs
    timer = clock.setTimer(delayMs, () => {
      timer = undefined
      timerAtMs = Number.POSITIVE_INFINITY
      expireDue()
      rearm()
    })
  }

  return {
    add: (entry) => heap.push(entry),
    delete: (entry) => {
      heap.delete(entry)
    },
    has: (entry) => heap.has(entry),
    expireDue,
    rearm,
    close: clear,
  }
}
