import { createFifoOrder } from './fifo-order.ts'
import type { QueuedEntry } from './queued-entry.ts'
import { createShortestPredictedFirstOrder } from './shortest-predicted-first-order.ts'

/** The order in which one tenant's entries within one priority band are offered for admission. */
export interface EntryOrder<T> {
  readonly size: number
  add(entry: QueuedEntry<T>): void
  delete(entry: QueuedEntry<T>): void
  /** The first of `ordered(nowMs)`, without starting an iteration: the common case is cheap. */
  first(nowMs: number): QueuedEntry<T> | undefined
  /**
   * Entries in service order at `nowMs`, lazily, so that a scan which stops at the first accepted
   * entry costs O(log n). The order must not change while the iteration runs.
   */
  ordered(nowMs: number): Generator<QueuedEntry<T>, void, undefined>
}

export type EntryOrderName = 'fifo' | 'shortest-predicted-first'

export const ENTRY_ORDER_NAMES: readonly EntryOrderName[] = ['fifo', 'shortest-predicted-first']

export function createEntryOrder<T>(name: EntryOrderName): EntryOrder<T> {
  return name === 'fifo' ? createFifoOrder<T>() : createShortestPredictedFirstOrder<T>()
}
