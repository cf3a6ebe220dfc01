import type { EntryOrder } from './entry-order.ts'
import { createIndexedHeap } from './indexed-heap.ts'
import type { QueuedEntry } from './queued-entry.ts'

/**
 * First come, first served by enqueue sequence. A heap rather than a linked list so that both
 * orders share one removal path; O(log n) is noise next to a request's life.
 */
export function createFifoOrder<T>(): EntryOrder<T> {
  const heap = createIndexedHeap<QueuedEntry<T>>((a, b) => a.seq < b.seq, {
    get: (e) => e.orderSlot,
    set: (e, i) => {
      e.orderSlot = i
    },
  })
  return {
    get size() {
      return heap.size
    },
    add: (entry) => heap.push(entry),
    delete: (entry) => {
      heap.delete(entry)
    },
    first: () => heap.peek(),
    ordered: () => heap.ordered(),
  }
}
