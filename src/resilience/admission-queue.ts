import type { Clock } from '../util/clock.ts'
import { buildEntry, resolveAdmissionOptions } from './admission-options.ts'
import { createAdmissionStatsRecorder } from './admission-stats.ts'
import type {
  AdmissionOutcome,
  AdmissionQueueOptions,
  AdmissionQueueStats,
  AdmissionRejectReason,
  AdmissionRequest,
  AdmissionTicket,
  QueueDepth,
} from './admission-types.ts'
import { createDeadlineSchedule } from './deadline-schedule.ts'
import { createDepartureWindow } from './departure-window.ts'
import { createFairBand, type FairBand } from './fair-band.ts'
import type { AdmissionEntry, QueuedEntry } from './queued-entry.ts'
import { retryAfterHintMs } from './retry-after-hint.ts'
import { planTenantEviction } from './tenant-eviction.ts'

/**
 * Aya's one admission queue: a late-binding waiting room in front of anything with limited
 * capacity (endpoints' KV and prefill, `maxPending`, a provider's quota, edge QoS). Entries wait
 * in strict priority bands, fair-shared per tenant within a band (see `fair-band.ts`), ordered
 * within a tenant FIFO or shortest-predicted-first with aging; a full queue keeps each tenant to
 * its fair share of places once others want in (see `tenant-eviction.ts`). The consumer pulls:
 * when capacity frees it calls `tryAdmit(canTake)`, which offers entries in that order and admits
 * the first the predicate accepts, so a request is bound to a place only when one can take it.
 *
 * Every entry leaves exactly once: admitted, or rejected with a reason. Outcomes resolve and never
 * reject, because rejection is ordinary flow control here and a caller that cancels and walks
 * away must not leave an unhandled rejection behind. See docs/admission.md.
 */
export interface AdmissionQueue<T> {
  readonly size: number
  readonly bytes: number
  enqueue(request: AdmissionRequest<T>): AdmissionTicket<T>
  /**
   * Offers queued entries in service order — bands from the highest priority down; within a band,
   * tenants in fair order — and admits the first one `canTake` accepts (default: the first).
   * Gives up after `maxScan` offers. Deadlines that have passed are enforced first.
   */
  tryAdmit(
    canTake?: (entry: AdmissionEntry<T>) => boolean,
    options?: { readonly maxScan?: number },
  ): AdmissionEntry<T> | undefined
  /** The entry `tryAdmit()` with no predicate would admit now. */
  peek(): AdmissionEntry<T> | undefined
  /** Queued count and bytes, for one priority, one tenant, both, or (no filter) the whole queue. */
  depth(filter?: { readonly priority?: number; readonly tenant?: string }): QueueDepth
  /**
   * How long a new entry at `priority` would wait: the predicted cost queued at that priority and
   * above, over the drain rate (`observedWaitMs`'s measurement when there is one within the rate
   * half-life, else the decayed admitted cost per second). 0 with nothing ahead; Infinity when
   * something is ahead but nothing has been admitted recently.
   */
  predictedWaitMs(priority: number): number
  /**
   * The drain rate `predictedWaitMs` divides by, in predicted cost per second: this queue's own,
   * else `deps.priorCostPerSecond` (a queue that replaced another on a reload has drained nothing
   * yet, though the capacity behind it is the same), else 0.
   */
  drainCostPerSecond(): number
  /**
   * The wait of a new entry at `priority` as the last few admissions measure it: the predicted
   * cost queued at that priority and above, over the cost those admissions drained per second up
   * to now, counting only time with something queued (see `departure-window.ts`). Undefined until
   * that many were seen, or when the latest is more than `recentMs` old: a caller that acts on a
   * prediction can then tell a measurement from a guess.
   */
  observedWaitMs(priority: number, recentMs: number): number | undefined
  /**
   * Counts a request the consumer refused at the door without queueing it (shed under
   * saturation, or predicted to miss its deadline), so `rejectedTotal` counts every refusal.
   */
  recordRefusal(reason: AdmissionRejectReason): void
  /** Rejects up to `maxCount` sheddable entries with LB_ERR_SHED, lowest band first. */
  shed(maxCount?: number): number
  stats(): AdmissionQueueStats
  /** Rejects everything queued with LB_ERR_SHED and refuses new entries the same way. */
  close(): void
}

const MAX_EMPTY_BANDS = 16
/** Admissions behind `observedWaitMs`. */
const OBSERVED_DEPARTURES = 16

export function createAdmissionQueue<T>(
  options: AdmissionQueueOptions,
  deps: {
    readonly clock: Clock
    /** The drain rate to predict with until this queue has one of its own (see above). */
    readonly priorCostPerSecond?: (() => number) | undefined
  },
): AdmissionQueue<T> {
  const settings = resolveAdmissionOptions(options)
  const { clock } = deps
  const recorder = createAdmissionStatsRecorder({ rateHalfLifeMs: settings.rateHalfLifeMs }, deps)
  // Time with something queued, summed: `observedWaitMs` measures the drain over it, since a
  // queue empty between bursts drains nothing and those spells would read as a slow drain.
  let busyMs = 0
  let busySinceMs: number | undefined
  const busyNowMs = (): number =>
    busySinceMs === undefined ? busyMs : busyMs + clock.now() - busySinceMs
  const departures = createDepartureWindow(
    { size: OBSERVED_DEPARTURES },
    { clock, busyMs: busyNowMs },
  )
  const bands = new Map<number, FairBand<T>>()
  /** Band priorities, highest first. */
  const priorities: number[] = []
  const deadlines = createDeadlineSchedule<T>((due) => {
    // Every expired entry is still queued, though it has left the deadline heap.
    for (const entry of due) unlink(entry, false)
    settleRejected(due, 'LB_ERR_DEADLINE')
  }, deps)
  const settlers = new Map<QueuedEntry<T>, (outcome: AdmissionOutcome) => void>()
  let count = 0
  let bytes = 0
  let seq = 0
  /** Bumped on every change to the queued set, so a walk can notice a predicate that changed it. */
  let version = 0
  let closed = false
  let emptyBands = 0

  const bandFor = (priority: number): FairBand<T> => {
    let band = bands.get(priority)
    if (band !== undefined && band.count === 0) emptyBands--
    if (band === undefined) {
      band = createFairBand<T>({ priority, order: settings.order, weightOf: settings.weightOf })
      bands.set(priority, band)
      let at = 0
      while (at < priorities.length && priorities[at]! > priority) at++
      priorities.splice(at, 0, priority)
    }
    return band
  }

  const costAhead = (priority: number): number => {
    let aheadCost = 0
    for (const p of priorities) {
      if (p < priority) break
      aheadCost += bands.get(p)!.cost
    }
    return aheadCost
  }

  const waitMs = (aheadCost: number, perSecond: number): number => {
    if (aheadCost === 0) return 0
    return perSecond > 0 ? (aheadCost / perSecond) * 1000 : Number.POSITIVE_INFINITY
  }

  // One drain estimate for every prediction: the recent departures when there are enough of them
  // lately, else the decayed admitted rate (slow to follow a burst, but there from the first).
  const drainCostPerSecond = (): number => {
    const own =
      departures.costPerSecond(settings.rateHalfLifeMs) ?? recorder.admittedCostPerSecond()
    return own > 0 ? own : (deps.priorCostPerSecond?.() ?? 0)
  }
  const predictedWaitMs = (priority: number): number =>
    waitMs(costAhead(priority), drainCostPerSecond())

  /**
   * The cost of a batch's entries at `priority` or above but one entry's worth (their mean): what
   * is ahead of the last of them to be served, were they all to come back at once.
   */
  const expiredAhead = (entries: readonly QueuedEntry<T>[], priority: number): number => {
    let cost = 0
    let n = 0
    for (const entry of entries) {
      if (entry.priority < priority) continue
      cost += entry.predictedCost
      n++
    }
    return n === 0 ? 0 : (cost * (n - 1)) / n
  }

  const retryAfterMs = (priority: number, reason: AdmissionRejectReason): number =>
    reason === 'LB_ERR_CLIENT_ABORTED' ? 0 : retryAfterHintMs(predictedWaitMs(priority))

  /** Takes a queued entry out of every structure; the caller settles it. */
  const unlink = (entry: QueuedEntry<T>, admitted: boolean): void => {
    const band = bands.get(entry.priority)!
    if (admitted) band.admit(entry)
    else band.remove(entry)
    if (band.count === 0) {
      // Keep a few empty bands: a band that drains and refills on every request (the usual case
      // at low load) would otherwise be rebuilt, tenants and all, each time.
      if (emptyBands < MAX_EMPTY_BANDS) emptyBands++
      else {
        bands.delete(entry.priority)
        priorities.splice(priorities.indexOf(entry.priority), 1)
      }
    }
    deadlines.delete(entry)
    count--
    bytes = count === 0 ? 0 : bytes - entry.sizeBytes
    if (count === 0 && busySinceMs !== undefined) {
      busyMs += clock.now() - busySinceMs
      busySinceMs = undefined
    }
    version++
  }

  const settle = (entry: QueuedEntry<T>, outcome: AdmissionOutcome): void => {
    const resolve = settlers.get(entry)
    settlers.delete(entry)
    resolve?.(outcome)
  }

  const admit = (entry: QueuedEntry<T>): void => {
    unlink(entry, true)
    entry.state = 'admitted'
    const waitedMs = clock.now() - entry.enqueuedAtMs
    recorder.admitted(waitedMs, entry.predictedCost)
    departures.add(entry.predictedCost)
    settle(entry, { status: 'admitted', waitedMs })
  }

  /**
   * Settles entries that left the queue together: all have left before any is told when to retry,
   * so entries that expire in one instant are told one wait per band, not each a wait counting the
   * others still there. Those that expired together will come back together, though: their wait
   * counts, beside what is still queued at their priority or above, their own batch but one
   * entry's worth, the wait of the last of them to be served. Told the empty queue's 1 s, a band
   * that timed out because the engines were stuck came back at once and timed out again. (Told
   * alike, they still come back together, only later: the hint makes room, it does not spread.)
   */
  const settleRejected = (
    entries: readonly QueuedEntry<T>[],
    reason: AdmissionRejectReason,
  ): void => {
    const hints = new Map<number, number>()
    for (const entry of entries) {
      let hint = hints.get(entry.priority)
      if (hint === undefined) {
        hint =
          reason === 'LB_ERR_DEADLINE' && entries.length > 1
            ? retryAfterHintMs(
                waitMs(
                  costAhead(entry.priority) + expiredAhead(entries, entry.priority),
                  drainCostPerSecond(),
                ),
              )
            : retryAfterMs(entry.priority, reason)
        hints.set(entry.priority, hint)
      }
      entry.state = 'rejected'
      recorder.rejected(reason)
      settle(entry, {
        status: 'rejected',
        reason,
        waitedMs: clock.now() - entry.enqueuedAtMs,
        retryAfterMs: hint,
      })
    }
  }
  const reject = (entry: QueuedEntry<T>, reason: AdmissionRejectReason): void => {
    // An entry refused at enqueue was never linked in; everything queued is in `deadlines`.
    if (deadlines.has(entry)) unlink(entry, false)
    settleRejected([entry], reason)
  }

  /**
   * Evicts sheddable entries below `priority` until the newcomer fits. When even evicting all of
   * them would not make room, evicts nothing and returns false.
   */
  const makeRoom = (priority: number, sizeBytes: number): boolean => {
    const fits = () => count + 1 <= settings.maxEntries && bytes + sizeBytes <= settings.maxBytes
    if (fits()) return true
    if (sizeBytes > settings.maxBytes) return false
    let freeCount = 0
    let freeBytes = 0
    for (const p of priorities) {
      if (p >= priority) continue
      freeCount += bands.get(p)!.sheddableCount
      freeBytes += bands.get(p)!.sheddableBytes
    }
    if (count + 1 - freeCount > settings.maxEntries) return false
    if (bytes + sizeBytes - freeBytes > settings.maxBytes) return false
    while (!fits()) {
      const lowest = priorities.findLast((p) => p < priority && bands.get(p)!.sheddableCount > 0)
      reject(bands.get(lowest!)!.evictionVictim()!, 'LB_ERR_SHED')
    }
    return true
  }

  /** The per-tenant bound: a full queue makes room for a tenant under its share, or refuses. */
  const evictOverShare = (entry: QueuedEntry<T>): boolean => {
    const victims = planTenantEviction({
      tenant: entry.tenant,
      priority: entry.priority,
      sizeBytes: entry.sizeBytes,
      bands: priorities.map((p) => bands.get(p)!),
      count,
      bytes,
      maxEntries: settings.maxEntries,
      maxBytes: settings.maxBytes,
    })
    if (victims === undefined) return false
    // Full, not shed: the victim's own tenant filled the queue past its share.
    for (const victim of victims) reject(victim, 'LB_ERR_QUEUE_FULL')
    return true
  }

  const firstCandidate = (): QueuedEntry<T> | undefined => {
    const nowMs = clock.now()
    for (const p of priorities) {
      const head = bands.get(p)!.first(nowMs)
      if (head !== undefined) return head
    }
    return undefined
  }

  const enqueue = (request: AdmissionRequest<T>): AdmissionTicket<T> => {
    const nowMs = clock.now()
    const entry = buildEntry(request, nowMs, seq++, settings)
    let resolve: (outcome: AdmissionOutcome) => void = () => {}
    const outcome = new Promise<AdmissionOutcome>((r) => {
      resolve = r
    })
    const ticket: AdmissionTicket<T> = {
      entry,
      get state() {
        return entry.state
      },
      outcome,
      cancel() {
        if (entry.state !== 'queued') return false
        reject(entry, 'LB_ERR_CLIENT_ABORTED')
        deadlines.rearm()
        return true
      },
    }
    recorder.enqueued()
    const onSettled = request.onSettled
    const settleWith = onSettled
      ? (result: AdmissionOutcome) => {
          try {
            onSettled(result)
          } finally {
            resolve(result)
          }
        }
      : resolve
    settlers.set(entry, settleWith)
    const refusal = refusalAt(request, entry, nowMs)
    if (refusal !== undefined) {
      reject(entry, refusal)
      return ticket
    }
    bandFor(entry.priority).add(entry)
    deadlines.add(entry)
    if (count === 0) busySinceMs = nowMs
    count++
    bytes += entry.sizeBytes
    version++
    deadlines.rearm()
    const signal = request.signal
    if (signal !== undefined) {
      const onAbort = () => ticket.cancel()
      signal.addEventListener('abort', onAbort, { once: true })
      // Drop the listener once the entry leaves, so a long-lived signal does not pin it.
      settlers.set(entry, (result) => {
        signal.removeEventListener('abort', onAbort)
        settleWith(result)
      })
    }
    return ticket
  }

  /** Why a new entry cannot be queued at all (evicting room for it if it can), or undefined. */
  const refusalAt = (
    request: AdmissionRequest<T>,
    entry: QueuedEntry<T>,
    nowMs: number,
  ): AdmissionRejectReason | undefined => {
    if (closed) return 'LB_ERR_SHED'
    if (request.signal?.aborted) return 'LB_ERR_CLIENT_ABORTED'
    if (entry.deadlineMs <= nowMs) return 'LB_ERR_DEADLINE'
    deadlines.expireDue()
    if (makeRoom(entry.priority, entry.sizeBytes)) return undefined
    if (settings.fairShareEviction && evictOverShare(entry)) return undefined
    // A sheddable newcomer turned away by a full queue is shed; protected work gets QUEUE_FULL.
    return entry.sheddable ? 'LB_ERR_SHED' : 'LB_ERR_QUEUE_FULL'
  }

  type Predicate = ((entry: AdmissionEntry<T>) => boolean) | undefined
  type Verdict = QueuedEntry<T> | 'refused' | 'exhausted' | 'restart'

  /** One pass over the bands; 'restart' when the predicate changed the queue under it. */
  const walk = (canTake: Predicate, budget: { left: number }): Verdict => {
    const seen = version
    const nowMs = clock.now()
    const offer = (entry: QueuedEntry<T>): Verdict => {
      if (budget.left-- <= 0) return 'exhausted'
      const accepted = canTake === undefined || canTake(entry)
      // A predicate that re-entered the queue leaves the walk's iterators stale.
      if (version !== seen) return accepted && entry.state === 'queued' ? entry : 'restart'
      return accepted ? entry : 'refused'
    }
    for (const p of priorities) {
      const band = bands.get(p)!
      // The band's head is offered on its own first: most walks end there, with no iterator.
      const head = band.first(nowMs)
      if (head === undefined) continue
      let verdict = offer(head)
      if (verdict !== 'refused') return verdict
      const rest = band.candidates(nowMs)
      rest.next()
      for (const entry of rest) {
        verdict = offer(entry)
        if (verdict !== 'refused') return verdict
      }
    }
    return 'exhausted'
  }

  const tryAdmit: AdmissionQueue<T>['tryAdmit'] = (canTake, tryOptions) => {
    if (closed) return undefined
    deadlines.expireDue()
    const budget = { left: tryOptions?.maxScan ?? settings.maxScan }
    let verdict = walk(canTake, budget)
    while (verdict === 'restart') verdict = walk(canTake, budget)
    const chosen = typeof verdict === 'string' ? undefined : verdict
    if (chosen) admit(chosen)
    deadlines.rearm()
    return chosen
  }

  return {
    get size() {
      return count
    },
    get bytes() {
      return bytes
    },
    enqueue,
    tryAdmit,
    peek() {
      deadlines.expireDue()
      deadlines.rearm()
      return firstCandidate()
    },
    depth(filter) {
      let depthCount = 0
      let depthBytes = 0
      for (const band of bands.values()) {
        if (filter?.priority !== undefined && band.priority !== filter.priority) continue
        const d = filter?.tenant === undefined ? band : band.depth(filter.tenant)
        depthCount += d.count
        depthBytes += d.bytes
      }
      return { count: depthCount, bytes: depthBytes }
    },
    predictedWaitMs,
    drainCostPerSecond,
    observedWaitMs(priority, recentMs) {
      const perSecond = departures.costPerSecond(recentMs)
      return perSecond === undefined ? undefined : waitMs(costAhead(priority), perSecond)
    },
    recordRefusal: (reason) => recorder.rejected(reason),
    shed(maxCount = Number.POSITIVE_INFINITY) {
      let shedCount = 0
      while (shedCount < maxCount) {
        const lowest = priorities.findLast((p) => bands.get(p)!.sheddableCount > 0)
        if (lowest === undefined) break
        reject(bands.get(lowest)!.evictionVictim()!, 'LB_ERR_SHED')
        shedCount++
      }
      deadlines.rearm()
      return shedCount
    },
    stats() {
      return {
        ...recorder.snapshot(),
        count,
        bytes,
        bands: priorities
          .filter((priority) => bands.get(priority)!.count > 0)
          .map((priority) => {
            const band = bands.get(priority)!
            return {
              priority,
              count: band.count,
              bytes: band.bytes,
              tenants: band.tenantCount,
              predictedWaitMs: predictedWaitMs(priority),
            }
          }),
      }
    },
    close() {
      if (closed) return
      closed = true
      deadlines.close()
      // All leave together, as at a deadline: each is told the same Retry-After.
      const queued = [...settlers.keys()]
      for (const entry of queued) if (deadlines.has(entry)) unlink(entry, false)
      settleRejected(queued, 'LB_ERR_SHED')
    },
  }
}
