import type { PickContext } from '../balancer/picker.ts'
import type { UpstreamGroup } from '../balancer/upstream-group.ts'
import type { AdmissionConfig } from '../config/schema.ts'
import { type AdmissionQueue, createAdmissionQueue } from '../resilience/admission-queue.ts'
import type {
  AdmissionOutcome,
  AdmissionQueueStats,
  AdmissionRejectReason,
} from '../resilience/admission-types.ts'
import type { AdmissionEntry } from '../resilience/queued-entry.ts'
import type { Endpoint } from '../upstream/endpoint.ts'
import type { Clock, Timer } from '../util/clock.ts'

export interface AdmissionAsk {
  readonly ctx: PickContext
  readonly priority: number
  readonly sheddable: boolean
  readonly tenant: string
  readonly sizeBytes: number
  /** Predicted work, for shortest-predicted-first and fair share (tokens). */
  readonly predictedCost: number
  readonly signal: AbortSignal
  /**
   * Called synchronously, once, when a request that was queued is admitted or rejected (virtual
   * time cannot wait for the promise); it must bind the request before it returns. When `acquire`
   * returns a result rather than a promise, the request was never queued and this is not called;
   * when it returns a promise, use this or the promise, not both.
   */
  readonly onResult?: ((result: AdmissionResult) => void) | undefined
}

export type AdmissionResult =
  | {
      readonly admitted: true
      readonly waitedMs: number
      /**
       * An endpoint held for an urgent request that could not go yet: place this one elsewhere,
       * so the capacity it frees is not taken by those behind it.
       */
      readonly avoid?: string | undefined
    }
  | {
      readonly admitted: false
      readonly reason: AdmissionRejectReason
      readonly retryAfterMs: number
    }

/**
 * Late binding for one upstream group, on the one admission queue: a request goes straight
 * through while the queue is empty and the policy can place it within the TTFT SLO; otherwise it
 * waits, and is let go when the policy says an endpoint can take it (after a completion or a first
 * token frees capacity, or on a short recheck timer while anything waits).
 */
export interface GroupAdmission {
  acquire(ask: AdmissionAsk): Promise<AdmissionResult> | AdmissionResult
  /** Capacity changed (a request finished or produced its first token): admit what now fits. */
  notify(): void
  /** Requests waiting now. */
  readonly waiting: number
  stats(): AdmissionQueueStats
  predictedWaitMs(priority: number): number
  close(): void
}

const ADMITTED_AT_ONCE: AdmissionResult = { admitted: true, waitedMs: 0 }

export function createGroupAdmission(
  group: Pick<UpstreamGroup, 'canTake' | 'eligible'>,
  config: AdmissionConfig,
  deps: { readonly clock: Clock },
  /**
   * The queue this one replaced on a reload, while requests still wait in it: they are let go
   * first whenever capacity frees, so the new queue cannot starve them.
   */
  predecessor?: GroupAdmission | undefined,
): GroupAdmission {
  const queue: AdmissionQueue<AdmissionAsk> = createAdmissionQueue<AdmissionAsk>(
    {
      maxEntries: config.maxPending,
      maxBytes: config.maxPendingBytes,
      defaultMaxWaitMs: config.maxWaitMs,
      order: config.order,
    },
    deps,
  )
  let timer: Timer | undefined

  let older = predecessor
  // Where each admitted request must not go (see `drain`), read when its result is built.
  const avoids = new WeakMap<AdmissionAsk, string>()
  const roomiestEndpoint = (): string | undefined => {
    let best: Endpoint | undefined
    for (const endpoint of group.eligible()) {
      if (best === undefined || endpoint.kvTokens < best.kvTokens) best = endpoint
    }
    return best?.id
  }
  const resultOf = (outcome: AdmissionOutcome, ask: AdmissionAsk): AdmissionResult => {
    if (outcome.status !== 'admitted') {
      return { admitted: false, reason: outcome.reason, retryAfterMs: outcome.retryAfterMs }
    }
    const avoid = avoids.get(ask)
    return avoid === undefined
      ? { admitted: true, waitedMs: outcome.waitedMs }
      : { admitted: true, waitedMs: outcome.waitedMs, avoid }
  }
  const drain = () => {
    if (older !== undefined) {
      if (older.waiting === 0) older = undefined
      else older.notify()
    }
    // With no endpoint to wait for, waiting cannot help: every request goes on and fails fast, as
    // it would without admission, instead of holding a place until its deadline.
    if (group.eligible().length === 0) {
      while (queue.tryAdmit(() => true) !== undefined) {}
      return
    }
    // Each admitted request must bind to its endpoint before the next is considered, so that the
    // policy's router-side accounting counts it. A consumer with `onResult` binds inside it,
    // synchronously; one that awaits the promise binds later and calls `notify()` once bound, so
    // only one of those is let go per drain.
    //
    // With `holdForUrgent`, an urgent request (past its aging bound) that cannot go yet gets an
    // endpoint held for it (the one with the least KV in use, where room comes soonest): the
    // requests behind it may still go, but elsewhere. Without the hold, shorter ones that fit
    // would take every bit of room that frees, and a long prompt would wait out its deadline.
    let held: string | undefined
    const nowMs = deps.clock.now()
    const canTake = (entry: AdmissionEntry<AdmissionAsk>): boolean => {
      if (group.canTake(entry.value.ctx, config.ttftSloMs, held)) {
        if (held !== undefined) avoids.set(entry.value, held)
        return true
      }
      if (config.holdForUrgent && held === undefined && entry.urgentAtMs <= nowMs) {
        held = roomiestEndpoint()
      }
      return false
    }
    while (queue.size > 0) {
      const admitted = queue.tryAdmit(canTake)
      if (!admitted?.value.onResult) break
    }
    scheduleRecheck()
  }

  const scheduleRecheck = () => {
    if (timer || queue.size === 0) return
    timer = deps.clock.setTimer(config.recheckMs, () => {
      timer = undefined
      drain()
    })
  }

  return {
    get waiting() {
      return queue.size
    },
    acquire(ask) {
      if (group.eligible().length === 0) return ADMITTED_AT_ONCE
      if (queue.size === 0 && group.canTake(ask.ctx, config.ttftSloMs)) return ADMITTED_AT_ONCE
      if (ask.sheddable && config.shedSheddable) {
        return {
          admitted: false,
          reason: 'LB_ERR_SHED',
          retryAfterMs: Math.max(1000, queue.predictedWaitMs(ask.priority)),
        }
      }
      const { onResult } = ask
      const ticket = queue.enqueue({
        value: ask,
        priority: ask.priority,
        tenant: ask.tenant,
        sizeBytes: ask.sizeBytes,
        predictedCost: Math.max(1, ask.predictedCost),
        sheddable: ask.sheddable,
        maxWaitMs: config.maxWaitMs,
        signal: ask.signal,
        onSettled: onResult && ((outcome) => onResult(resultOf(outcome, ask))),
      })
      scheduleRecheck()
      return ticket.outcome.then((outcome) => resultOf(outcome, ask))
    },
    notify() {
      if (queue.size > 0) drain()
    },
    stats: () => queue.stats(),
    predictedWaitMs: (priority) => queue.predictedWaitMs(priority),
    close() {
      timer?.clear()
      queue.close()
    },
  }
}
