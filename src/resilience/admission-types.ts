import type { AdmissionCounters } from './admission-stats.ts'
import type { EntryOrderName } from './entry-order.ts'
import type { AdmissionEntry, EntryState } from './queued-entry.ts'

/** Why an entry left the queue without being admitted. Stable: consumers map them to replies. */
export type AdmissionRejectReason =
  | 'LB_ERR_QUEUE_FULL'
  | 'LB_ERR_DEADLINE'
  | 'LB_ERR_SHED'
  | 'LB_ERR_CLIENT_ABORTED'

export const ADMISSION_REJECT_REASONS: readonly AdmissionRejectReason[] = [
  'LB_ERR_QUEUE_FULL',
  'LB_ERR_DEADLINE',
  'LB_ERR_SHED',
  'LB_ERR_CLIENT_ABORTED',
]

/** What a consumer hands `enqueue`. Every field but `value` is optional. */
export interface AdmissionRequest<T> {
  /** The consumer's payload, handed back in predicates and by `tryAdmit`. */
  readonly value: T
  /** An integer; higher is served first. Default 0. */
  readonly priority?: number
  /** The fairness key. Default '' (one shared tenant). */
  readonly tenant?: string
  /** Counted against `maxBytes`. Default 0. */
  readonly sizeBytes?: number
  /**
   * Absolute, on the queue clock's `now()` timeline: the entry can be admitted only before it, and
   * is rejected with LB_ERR_DEADLINE when it arrives. Default: now + `defaultMaxWaitMs`.
   */
  readonly deadlineMs?: number
  /** Relative alternative to `deadlineMs`; with both, the earlier wins. */
  readonly maxWaitMs?: number
  /** > 0, in the consumer's unit (tokens, requests, seconds). Default 1. */
  readonly predictedCost?: number
  /** Whether a full queue may evict it for a higher priority. Default: `priority < 0`. */
  readonly sheddable?: boolean
  /** Aborting it cancels the entry (LB_ERR_CLIENT_ABORTED). */
  readonly signal?: AbortSignal
  /**
   * Called once, synchronously, when the entry is admitted or rejected, just before `outcome`
   * resolves: for callers that run in virtual time and cannot wait for a promise.
   */
  readonly onSettled?: ((outcome: AdmissionOutcome) => void) | undefined
}

export type AdmissionOutcome =
  | { readonly status: 'admitted'; readonly waitedMs: number }
  | {
      readonly status: 'rejected'
      readonly reason: AdmissionRejectReason
      readonly waitedMs: number
      /**
       * A `Retry-After` hint: the predicted wait at its priority, in whole seconds within
       * [1 s, 60 s]; 0 on abort.
       */
      readonly retryAfterMs: number
    }

export interface AdmissionTicket<T> {
  readonly entry: AdmissionEntry<T>
  readonly state: EntryState
  /** Settles once, when the entry is admitted or rejected; never rejects. */
  readonly outcome: Promise<AdmissionOutcome>
  /** Withdraws a queued entry (LB_ERR_CLIENT_ABORTED). False when it had already left. */
  cancel(): boolean
}

export interface AdmissionQueueOptions {
  /** Default 1024 entries. */
  readonly maxEntries?: number
  /** Default 256 MiB. */
  readonly maxBytes?: number
  /** The wait allowed to an entry that names no deadline. Default 30 000 ms. */
  readonly defaultMaxWaitMs?: number
  /** Order within a tenant of a band. Default 'fifo'. */
  readonly order?: EntryOrderName
  /** Shortest-predicted-first: how long shorter entries may keep passing one. Default 5 000 ms. */
  readonly maxBypassMs?: number
  /**
   * Shortest-predicted-first: the share of the time between its enqueue and its deadline after
   * which an entry goes ahead of shorter ones. Default 0.5.
   */
  readonly agingFraction?: number
  /** Offers per `tryAdmit` before it gives up. Default 64. */
  readonly maxScan?: number
  /** Fair-share weight per tenant; unlisted tenants weigh 1. */
  readonly tenantWeights?: Readonly<Record<string, number>>
  /** Half-life of the admitted-cost rate behind `predictedWaitMs`. Default 10 000 ms. */
  readonly rateHalfLifeMs?: number
  /**
   * When full, let a newcomer from a tenant under its fair share (an equal split among the
   * tenants queued) evict the newest entries of the tenant holding the most, from its band or
   * lower (see `tenant-eviction.ts`). Default true.
   */
  readonly fairShareEviction?: boolean
}

export interface QueueDepth {
  readonly count: number
  readonly bytes: number
}

export interface AdmissionBandStats extends QueueDepth {
  readonly priority: number
  readonly tenants: number
  readonly predictedWaitMs: number
}

export interface AdmissionQueueStats extends AdmissionCounters, QueueDepth {
  /** Highest priority first; only bands with entries. */
  readonly bands: readonly AdmissionBandStats[]
}
