import type { EntryOrder } from './entry-order.ts'
import { createIndexedHeap } from './indexed-heap.ts'
import type { QueuedEntry } from './queued-entry.ts'

/**
 * Shortest predicted first, with aging. Plain SJF minimises mean wait but starves a long entry
 * forever under a steady stream of short ones, so each entry carries `urgentAtMs` (set by the
 * queue: the earlier of `enqueuedAtMs + maxBypassMs` and the point where it has used
 * `agingFraction` of the time to its deadline). Once `nowMs` reaches it the entry is urgent:
 * urgent entries go first, earliest `urgentAtMs` first (ties by arrival), and only then the rest
 * by predicted cost (ties by arrival). An entry can therefore be passed by shorter ones only
 * until it turns urgent, which leaves it the rest of its deadline to be admitted.
 */
export function createShortestPredictedFirstOrder<T>(): EntryOrder<T> {
  const byCost = createIndexedHeap<QueuedEntry<T>>(
    (a, b) =>
      a.predictedCost < b.predictedCost || (a.predictedCost === b.predictedCost && a.seq < b.seq),
    {
      get: (e) => e.orderSlot,
      set: (e, i) => {
        e.orderSlot = i
      },
    },
  )
  const byUrgency = createIndexedHeap<QueuedEntry<T>>(
    (a, b) => a.urgentAtMs < b.urgentAtMs || (a.urgentAtMs === b.urgentAtMs && a.seq < b.seq),
    {
      get: (e) => e.urgencySlot,
      set: (e, i) => {
        e.urgencySlot = i
      },
    },
  )
  return {
    get size() {
      return byCost.size
    },
    add(entry) {
      byCost.push(entry)
      byUrgency.push(entry)
    },
    delete(entry) {
      byCost.delete(entry)
      byUrgency.delete(entry)
    },
    first(nowMs) {
      // If any entry is urgent, the earliest-urgent one is: the urgency heap's top decides.
      const urgent = byUrgency.peek()
      return urgent !== undefined && urgent.urgentAtMs <= nowMs ? urgent : byCost.peek()
    },
    *ordered(nowMs) {
      for (const entry of byUrgency.ordered()) {
        if (entry.urgentAtMs > nowMs) break
        yield entry
      }
      for (const entry of byCost.ordered()) {
        if (entry.urgentAtMs > nowMs) yield entry
      }
    },
  }
}
