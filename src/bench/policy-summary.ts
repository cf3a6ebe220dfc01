import { percentile, sortedNumbers } from './percentiles.ts'
import type { RunRecord } from './run-record.ts'

/** The per-policy keys of `report.json` (`policies.<name>`); see docs/bench.md. */
export interface PolicyResult {
  readonly ttftP50Ms: number
  readonly ttftP90Ms: number
  readonly ttftP99Ms: number
  readonly itlP50Ms: number
  readonly itlP99Ms: number
  readonly e2eP50Ms: number
  readonly e2eP99Ms: number
  readonly completed: number
  readonly failed: number
  readonly requestsPerSec: number
  readonly outputTokensPerSec: number
  /** Requests that met both SLOs, per second of offered load (see `summarizeRun`). */
  readonly goodputPerSec: number
  /** Requests that met both SLOs. */
  readonly goodRequests: number
  readonly prefixHitRate: number | null
  /**
   * Prompt tokens the engines' prefix caches held when each request was first scheduled, over all
   * prompt tokens: each prompt once, as `meta.lruBoundPrefixHitRate` counts it. Null when the
   * engines report no cached tokens.
   */
  readonly promptHitRate: number | null
  readonly imbalance: number | null
  /**
   * Each replica's share of the fleet's uncached prefill tokens, in replica order (that of
   * `meta.fleet.profile`'s list); null when there was none. On a mixed fleet it shows whether the
   * faster replicas got proportionately more work.
   */
  readonly replicaPrefillShare: readonly number[] | null
}

export const POLICY_RESULT_KEYS = [
  'ttftP50Ms',
  'ttftP90Ms',
  'ttftP99Ms',
  'itlP50Ms',
  'itlP99Ms',
  'e2eP50Ms',
  'e2eP99Ms',
  'completed',
  'failed',
  'requestsPerSec',
  'outputTokensPerSec',
  'goodputPerSec',
  'goodRequests',
  'prefixHitRate',
  'promptHitRate',
  'imbalance',
  'replicaPrefillShare',
] as const satisfies readonly (keyof PolicyResult)[]

export interface SloTargets {
  readonly ttftMs: number
  readonly itlMs: number
}

/**
 * Summarises a run. Failed requests (non-2xx, stream error, client timeout) count as infinite TTFT
 * and e2e, so shedding the hard requests cannot flatter a policy; ITL pools the gaps of every
 * request that streamed. Throughput (requests and output tokens per second) is per trace second
 * from the first send to the last end, the run's own makespan. Goodput is per second of offered
 * load, from the first send to the last, the same for every policy on one replay: divided by its
 * own makespan, a policy that failed a long request early, or finished its last stream sooner,
 * would score more good requests a second without serving one more in time.
 */
export function summarizeRun(record: RunRecord, slo: SloTargets): PolicyResult {
  const { outcomes } = record
  const ttft: number[] = []
  const e2e: number[] = []
  let completed = 0
  let outputTokens = 0
  let good = 0
  let firstSendMs = Number.POSITIVE_INFINITY
  let lastSendMs = Number.NEGATIVE_INFINITY
  let lastEndMs = Number.NEGATIVE_INFINITY
  let promptTokens = 0
  let cachedTokens = 0
  for (const o of outcomes) {
    firstSendMs = Math.min(firstSendMs, o.sendMs)
    lastSendMs = Math.max(lastSendMs, o.sendMs)
    lastEndMs = Math.max(lastEndMs, o.endMs)
    if (o.cachedPromptTokens !== undefined && o.promptTokens !== undefined) {
      promptTokens += o.promptTokens
      cachedTokens += o.cachedPromptTokens
    }
    const isComplete = o.ok && o.firstContentMs !== undefined
    if (!isComplete) {
      ttft.push(Number.POSITIVE_INFINITY)
      e2e.push(Number.POSITIVE_INFINITY)
      continue
    }
    completed++
    const ttftMs = o.firstContentMs! - o.sendMs
    ttft.push(ttftMs)
    e2e.push(o.endMs - o.sendMs)
    outputTokens += o.completionTokens ?? o.contentChunks
    const meanItlMs = o.contentChunks > 1 ? o.itlSumMs / (o.contentChunks - 1) : 0
    if (ttftMs <= slo.ttftMs && meanItlMs <= slo.itlMs) good++
  }
  const ttftSorted = sortedNumbers(ttft)
  const e2eSorted = sortedNumbers(e2e)
  const itlSorted = record.itlGapsMs.sorted()
  const durationS = outcomes.length === 0 ? 0 : Math.max(1e-9, (lastEndMs - firstSendMs) / 1000)
  const perSec = (n: number) => (durationS === 0 ? 0 : n / durationS)
  // A replay of one request has no span of its own: its makespan stands in.
  const offeredS = lastSendMs > firstSendMs ? (lastSendMs - firstSendMs) / 1000 : durationS
  return {
    ttftP50Ms: percentile(ttftSorted, 0.5),
    ttftP90Ms: percentile(ttftSorted, 0.9),
    ttftP99Ms: percentile(ttftSorted, 0.99),
    itlP50Ms: percentile(itlSorted, 0.5),
    itlP99Ms: percentile(itlSorted, 0.99),
    e2eP50Ms: percentile(e2eSorted, 0.5),
    e2eP99Ms: percentile(e2eSorted, 0.99),
    completed,
    failed: outcomes.length - completed,
    requestsPerSec: perSec(completed),
    outputTokensPerSec: perSec(outputTokens),
    goodputPerSec: offeredS === 0 ? 0 : good / offeredS,
    goodRequests: good,
    ...engineSummary(record),
    promptHitRate: promptTokens === 0 ? null : cachedTokens / promptTokens,
  }
}

/**
 * Fleet hit rate (Δhits / Δqueries), and per-replica uncached prefill tokens: max/mean and each
 * replica's share.
 */
export function engineSummary(
  record: Pick<RunRecord, 'replicas'>,
): Pick<PolicyResult, 'prefixHitRate' | 'imbalance' | 'replicaPrefillShare'> {
  let queries = 0
  let hits = 0
  const uncached = record.replicas.map((r) => {
    queries += r.prefixQueries
    hits += r.prefixHits
    return r.prefixQueries - r.prefixHits
  })
  const total = uncached.reduce((a, b) => a + b, 0)
  const mean = total / Math.max(1, uncached.length)
  return {
    prefixHitRate: queries === 0 ? null : hits / queries,
    imbalance: mean === 0 ? null : Math.max(...uncached) / mean,
    replicaPrefillShare: total === 0 ? null : uncached.map((u) => u / total),
  }
}
