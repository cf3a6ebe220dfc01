import { boundEndpointOf } from '../balancer/bound-endpoint.ts'
import type { PickContext } from '../balancer/picker.ts'
import type { UpstreamGroup } from '../balancer/upstream-group.ts'
import type { AdmissionConfig } from '../config/schema.ts'
import { type AdmissionQueue, createAdmissionQueue } from '../resilience/admission-queue.ts'
import type {
  AdmissionBandStats,
  AdmissionOutcome,
  AdmissionQueueStats,
  AdmissionRejectReason,
} from '../resilience/admission-types.ts'
import type { AdmissionEntry } from '../resilience/queued-entry.ts'
import { retryAfterHintMs } from '../resilience/retry-after-hint.ts'
import type { Endpoint } from '../upstream/endpoint.ts'
import type { Clock, Timer } from '../util/clock.ts'

export interface AdmissionAsk {
  readonly ctx: PickContext
  readonly priority: number
  /** The request's priority class: `admission.classes` may give it its own SLO and wait. */
  readonly className?: string | undefined
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
  /** Requests waiting now, in this queue and in the one it replaced. */
  readonly waiting: number
  /** Counters of this queue; depth (count, bytes, bands) also counts the queue it replaced. */
  stats(): AdmissionQueueStats
  /** How long a new request at `priority` would wait, behind the replaced queue's waiters too. */
  predictedWaitMs(priority: number): number
  /** The drain rate its predictions use (the replaced queue's until this one has drained some). */
  drainCostPerSecond(): number
  /**
   * The upstream no longer has this queue (a reload removed its admission block, or the upstream):
   * every request waiting in it, or in the one it replaced, goes on now, as it would have without
   * admission, and so does each that asks from now on (one whose body was read before the reload).
   */
  release(): void
  /**
   * A reload replaced this queue with `next` (which calls this). A request that read its body
   * before the reload asks this queue afterwards: it asks `next` instead, or it would wait where
   * no gauge sees it and no shutdown closes it once `next` has let this queue go. Capacity freed
   * by requests placed before the reload reaches `next` too, once nothing waits here.
   */
  succeededBy(next: GroupAdmission): void
  /** Closes this queue and the one it replaced. */
  close(): void
}

const ADMITTED_AT_ONCE: AdmissionResult = { admitted: true, waitedMs: 0 }

/**
 * `shedEarly` refuses a request at once only when the wait measured on recent admissions exceeds
 * `maxWaitMs` by this factor: a rough measurement must not turn away what would have fitted.
 */
const SHED_EARLY_MARGIN = 1.5

export function createGroupAdmission(
  group: Pick<UpstreamGroup, 'canTake' | 'eligible' | 'queued'>,
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
      maxBypassMs: config.maxBypassMs,
      agingFraction: config.agingFraction,
      fairShareEviction: config.fairShareEviction,
    },
    // The same endpoints drain both queues: until this one has admitted anything, the replaced
    // one's rate predicts its wait, which would otherwise read infinite after every reload.
    { clock: deps.clock, priorCostPerSecond: () => older?.drainCostPerSecond() ?? 0 },
  )
  let timer: Timer | undefined
  let released = false
  let successor: GroupAdmission | undefined
  const classOf = (ask: AdmissionAsk) =>
    ask.className === undefined || !Object.hasOwn(config.classes, ask.className)
      ? undefined
      : config.classes[ask.className]
  const sloOf = (ask: AdmissionAsk): number => classOf(ask)?.ttftSloMs ?? config.ttftSloMs
  const maxWaitOf = (ask: AdmissionAsk): number => classOf(ask)?.maxWaitMs ?? config.maxWaitMs

  let older = predecessor
  // The refusals of the queues this one replaced, once they are gone: counters never go back.
  let carried: Readonly<Record<AdmissionRejectReason, number>> | undefined
  const dropOlder = (): void => {
    if (older === undefined) return
    carried = older.stats().rejectedTotal
    older = undefined
  }
  // Where each admitted request must not go (see `drain`), read when its result is built.
  const avoids = new WeakMap<AdmissionAsk, string>()
  const roomiestEndpoint = (): string | undefined => {
    let best: Endpoint | undefined
    for (const endpoint of group.eligible()) {
      if (best === undefined || endpoint.kvTokens < best.kvTokens) best = endpoint
    }
    return best?.id
  }
  /**
   * The endpoint to hold for a request that cannot go yet: the one a sticky binding sends it to
   * (the only one it can use) while that is eligible, else the one where room comes soonest.
   */
  const holdTargetFor = (ask: AdmissionAsk): string | undefined =>
    boundEndpointOf(group.eligible(), ask.ctx)?.id ?? roomiestEndpoint()
  const resultOf = (outcome: AdmissionOutcome, ask: AdmissionAsk): AdmissionResult => {
    if (outcome.status !== 'admitted') {
      return { admitted: false, reason: outcome.reason, retryAfterMs: outcome.retryAfterMs }
    }
    const avoid = avoids.get(ask)
    return avoid === undefined
      ? { admitted: true, waitedMs: outcome.waitedMs }
      : { admitted: true, waitedMs: outcome.waitedMs, avoid }
  }
  /**
   * Lets the queue this one replaced go first: its waiters arrived before any here. True when one
   * of them went (or expired), which binds before anything here is judged, as below.
   */
  const olderGoesFirst = (): boolean => {
    if (older === undefined) return false
    const before = older.waiting
    if (before > 0) older.notify()
    const after = older.waiting
    if (after === 0) dropOlder()
    return after < before
  }
  const letAllGo = (): void => {
    while (queue.tryAdmit(() => true) !== undefined) {}
  }
  const drain = () => {
    const olderWent = olderGoesFirst()
    // With no endpoint to wait for, waiting cannot help: every request goes on and fails fast, as
    // it would without admission, instead of holding a place until its deadline.
    if (group.eligible().length === 0) {
      letAllGo()
      return
    }
    if (olderWent) {
      scheduleRecheck()
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
    //
    // Across bands the hold is not optional: bands are strict, so once a request of one band is
    // refused, requests of lower bands go only elsewhere than the endpoint held for it. Within a
    // band, passing stays work-conserving, and with one band in use nothing changes.
    let held: string | undefined
    let refusedPriority = Number.NEGATIVE_INFINITY
    // What the first refused request (the walk goes from the highest band down) would have held.
    let refusedWants: string | undefined
    const nowMs = deps.clock.now()
    const canTake = (entry: AdmissionEntry<AdmissionAsk>): boolean => {
      if (held === undefined && entry.priority < refusedPriority) held = refusedWants
      if (group.canTake(entry.value.ctx, sloOf(entry.value), held)) {
        if (held !== undefined) avoids.set(entry.value, held)
        return true
      }
      if (entry.priority > refusedPriority) {
        refusedPriority = entry.priority
        refusedWants = holdTargetFor(entry.value)
      }
      if (config.holdForUrgent && held === undefined && entry.urgentAtMs <= nowMs) {
        held = holdTargetFor(entry.value)
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
  const drainIfWaiting = (): void => {
    if (queue.size > 0 || older !== undefined) drain()
  }
  // A drain on the next turn of the clock, for arrivals that could go now.
  let soon: Timer | undefined
  const drainSoon = () => {
    if (soon) return
    soon = deps.clock.setTimer(0, () => {
      soon = undefined
      drainIfWaiting()
    })
  }

  const predictedWaitMs = (priority: number): number =>
    queue.predictedWaitMs(priority) + (older?.predictedWaitMs(priority) ?? 0)

  /** A refusal at the door, counted with the queue's own. */
  const refuse = (reason: AdmissionRejectReason, priority: number): AdmissionResult => {
    queue.recordRefusal(reason)
    return { admitted: false, reason, retryAfterMs: retryAfterHintMs(predictedWaitMs(priority)) }
  }

  /**
   * With `shedEarly`: whether the request would wait out its deadline anyway, as measured on the
   * last admissions. Never without recent ones: a queue that has not drained lately (scale from
   * zero, a reload) has no measurement, and the request waits its turn.
   */
  const missesDeadline = (priority: number, maxWaitMs: number): boolean => {
    if (!config.shedEarly) return false
    // A class that may wait long still sheds on a recent measurement, not a stale one.
    const waitMs = queue.observedWaitMs(priority, Math.min(maxWaitMs, config.maxWaitMs))
    return waitMs !== undefined && waitMs > maxWaitMs * SHED_EARLY_MARGIN
  }

  const admission: GroupAdmission = {
    get waiting() {
      return queue.size + (older?.waiting ?? 0)
    },
    acquire(ask) {
      if (released || group.eligible().length === 0) return ADMITTED_AT_ONCE
      if (successor !== undefined) return successor.acquire(ask)
      const canTakeNow = group.canTake(ask.ctx, sloOf(ask))
      if (queue.size === 0 && (older === undefined || older.waiting === 0) && canTakeNow) {
        return ADMITTED_AT_ONCE
      }
      // Saturation is this request having nowhere to go, not others waiting: one session held
      // for its busy endpoint must not shed batch work that an idle endpoint could take.
      if (ask.sheddable && config.shedSheddable && !canTakeNow) {
        return refuse('LB_ERR_SHED', ask.priority)
      }
      const maxWaitMs = maxWaitOf(ask)
      if (missesDeadline(ask.priority, maxWaitMs)) return refuse('LB_ERR_DEADLINE', ask.priority)
      const { onResult } = ask
      const ticket = queue.enqueue({
        value: ask,
        priority: ask.priority,
        tenant: ask.tenant,
        sizeBytes: ask.sizeBytes,
        predictedCost: Math.max(1, ask.predictedCost),
        sheddable: ask.sheddable,
        maxWaitMs,
        signal: ask.signal,
        onSettled: onResult && ((outcome) => onResult(resultOf(outcome, ask))),
      })
      // Refused at once (a full queue) is not waiting.
      if (ticket.state === 'queued') group.queued(ask.ctx)
      // It could go now, only others wait: the queue decides in its order whether it may pass
      // them, at once rather than at the next recheck. One drain serves a whole burst.
      if (canTakeNow) drainSoon()
      else scheduleRecheck()
      return ticket.outcome.then((outcome) => resultOf(outcome, ask))
    },
    notify() {
      // The successor lets this queue's waiters go first itself (it notifies this one only while
      // something waits here), so passing it on only once nothing waits cannot loop.
      if (successor !== undefined && admission.waiting === 0) successor.notify()
      else drainIfWaiting()
    },
    succeededBy(next) {
      successor = next
    },
    stats() {
      const own = queue.stats()
      const old = older?.stats()
      const stats = old === undefined ? own : withDepthOf(own, old, predictedWaitMs)
      const before = old?.rejectedTotal ?? carried
      return before === undefined
        ? stats
        : { ...stats, rejectedTotal: sumRejected(own.rejectedTotal, before) }
    },
    predictedWaitMs,
    drainCostPerSecond: () => queue.drainCostPerSecond(),
    release() {
      released = true
      timer?.clear()
      soon?.clear()
      // Its waiters arrived first: they go first, as on any drain.
      older?.release()
      dropOlder()
      // No gauge reads a queue the runtime no longer has: left to its rechecks, its waiters would
      // wait unseen, and behind the requests that now skip admission, until their deadlines.
      letAllGo()
    },
    close() {
      timer?.clear()
      soon?.clear()
      queue.close()
      older?.close()
      dropOlder()
    },
  }
  predecessor?.succeededBy(admission)
  return admission
}

function sumRejected(
  a: Readonly<Record<AdmissionRejectReason, number>>,
  b: Readonly<Record<AdmissionRejectReason, number>>,
): Record<AdmissionRejectReason, number> {
  const sum = { ...a }
  for (const reason of Object.keys(b) as AdmissionRejectReason[]) {
    sum[reason] = (sum[reason] ?? 0) + b[reason]
  }
  return sum
}

/**
 * `own` with the depth of the replaced queue added, so depth gauges see its waiters too; each
 * band's predicted wait is the combined one (`waitFor`), as `predictedWaitMs` reports it. A tenant
 * waiting in both queues is counted in each.
 */
function withDepthOf(
  own: AdmissionQueueStats,
  old: AdmissionQueueStats,
  waitFor: (priority: number) => number,
): AdmissionQueueStats {
  const bands = new Map<number, AdmissionBandStats>()
  for (const band of [...own.bands, ...old.bands]) {
    const seen = bands.get(band.priority)
    bands.set(band.priority, {
      priority: band.priority,
      count: (seen?.count ?? 0) + band.count,
      bytes: (seen?.bytes ?? 0) + band.bytes,
      tenants: (seen?.tenants ?? 0) + band.tenants,
      predictedWaitMs: waitFor(band.priority),
    })
  }
  return {
    ...own,
    count: own.count + old.count,
    bytes: own.bytes + old.bytes,
    bands: [...bands.values()].sort((a, b) => b.priority - a.priority),
  }
}
