import type { Clock } from '../util/clock.ts'
import type { AdmissionRejectReason } from './admission-types.ts'
import { createDecayedRate } from './decayed-rate.ts'

/** Upper bounds (ms) of the admitted-wait histogram's buckets; a last, unbounded one is implied. */
export const ADMISSION_WAIT_BUCKETS_MS: readonly number[] = [
  1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
]

/** How long admitted entries waited, as a Prometheus-style cumulative histogram. */
export interface AdmissionWaitStats {
  readonly count: number
  readonly sumMs: number
  readonly bucketsMs: readonly number[]
  /** `cumulativeCounts[i]` entries waited at most `bucketsMs[i]`; `count` is the +Inf bucket. */
  readonly cumulativeCounts: readonly number[]
}

/** The queue's counters; gauges (depth per band, predicted wait) are added by the queue. */
export interface AdmissionCounters {
  readonly enqueuedTotal: number
  readonly admittedTotal: number
  readonly rejectedTotal: Readonly<Record<AdmissionRejectReason, number>>
  /** Predicted cost admitted per second, decayed: the drain rate behind `predictedWaitMs`. */
  readonly admittedCostPerSecond: number
  readonly wait: AdmissionWaitStats
}

export interface AdmissionStatsRecorder {
  enqueued(): void
  admitted(waitedMs: number, predictedCost: number): void
  rejected(reason: AdmissionRejectReason): void
  admittedCostPerSecond(): number
  snapshot(): AdmissionCounters
}

export function createAdmissionStatsRecorder(
  options: { readonly rateHalfLifeMs: number },
  deps: { readonly clock: Clock },
): AdmissionStatsRecorder {
  const drain = createDecayedRate({ halfLifeMs: options.rateHalfLifeMs }, deps)
  const bucketCounts = new Array<number>(ADMISSION_WAIT_BUCKETS_MS.length).fill(0)
  const rejectedTotal: Record<AdmissionRejectReason, number> = {
    LB_ERR_QUEUE_FULL: 0,
    LB_ERR_DEADLINE: 0,
    LB_ERR_SHED: 0,
    LB_ERR_CLIENT_ABORTED: 0,
  }
  let enqueuedTotal = 0
  let admittedTotal = 0
  let waitSumMs = 0

  return {
    enqueued() {
      enqueuedTotal++
    },
    admitted(waitedMs, predictedCost) {
      admittedTotal++
      waitSumMs += waitedMs
      const bucket = ADMISSION_WAIT_BUCKETS_MS.findIndex((bound) => waitedMs <= bound)
      if (bucket >= 0) bucketCounts[bucket]!++
      drain.add(predictedCost)
    },
    rejected(reason) {
      rejectedTotal[reason]++
    },
    admittedCostPerSecond: () => drain.perSecond(),
    snapshot() {
      let running = 0
      return {
        enqueuedTotal,
        admittedTotal,
        rejectedTotal: { ...rejectedTotal },
        admittedCostPerSecond: drain.perSecond(),
        wait: {
          count: admittedTotal,
          sumMs: waitSumMs,
          bucketsMs: ADMISSION_WAIT_BUCKETS_MS,
          cumulativeCounts: bucketCounts.map((n) => {
            running += n
            return running
          }),
        },
      }
    },
  }
}
