import { NOT_IN_HEAP } from './indexed-heap.ts'

/** What a consumer sees of a waiting entry: in predicates, `peek` and `tryAdmit`'s result. */
export interface AdmissionEntry<T> {
  readonly value: T
  /** Integer; higher is served first. */
  readonly priority: number
  readonly tenant: string
  readonly sizeBytes: number
  /** Unit-free and > 0: what fair share charges and what shortest-predicted-first sorts on. */
  readonly predictedCost: number
  readonly sheddable: boolean
  /** On the queue's clock (`Clock.now()`), like `deadlineMs`. */
  readonly enqueuedAtMs: number
  readonly deadlineMs: number
  /**
   * When the entry turns urgent: shortest-predicted-first stops letting shorter entries pass it
   * (see `shortest-predicted-first-order.ts`), and a consumer may hold capacity for it.
   */
  readonly urgentAtMs: number
}

export type EntryState = 'queued' | 'admitted' | 'rejected'

/**
 * The queue's own record of an entry. The numeric slots say where the entry sits in each heap it
 * can be in, so removal from the middle (cancel, deadline, eviction) is O(log n).
 */
export interface QueuedEntry<T> extends AdmissionEntry<T> {
  readonly seq: number
  state: EntryState
  deadlineSlot: number
  orderSlot: number
  urgencySlot: number
  /** Links in the tenant's list of sheddable entries, oldest first: eviction takes the newest. */
  shedPrev: QueuedEntry<T> | undefined
  shedNext: QueuedEntry<T> | undefined
  /** Links in its tenant's list of entries in its band, oldest first: for fair-share eviction. */
  tenantPrev: QueuedEntry<T> | undefined
  tenantNext: QueuedEntry<T> | undefined
}

export function createQueuedEntry<T>(
  fields: Omit<
    QueuedEntry<T>,
    | 'state'
    | 'deadlineSlot'
    | 'orderSlot'
    | 'urgencySlot'
    | 'shedPrev'
    | 'shedNext'
    | 'tenantPrev'
    | 'tenantNext'
  >,
): QueuedEntry<T> {
  // Every field spelled out, in one literal: a spread builds the object in dictionary mode, and
  // the heaps read these slots on every sift.
  return {
    value: fields.value,
    priority: fields.priority,
    tenant: fields.tenant,
    sizeBytes: fields.sizeBytes,
    predictedCost: fields.predictedCost,
    sheddable: fields.sheddable,
    enqueuedAtMs: fields.enqueuedAtMs,
    deadlineMs: fields.deadlineMs,
    seq: fields.seq,
    urgentAtMs: fields.urgentAtMs,
    state: 'queued',
    deadlineSlot: NOT_IN_HEAP,
    orderSlot: NOT_IN_HEAP,
    urgencySlot: NOT_IN_HEAP,
    shedPrev: undefined,
    shedNext: undefined,
    tenantPrev: undefined,
    tenantNext: undefined,
  }
}
