import type { PolicyResult } from './policy-summary.ts'

/** Formats a metric for tables: null and infinities as ∞ (failures) or —, 3 significant digits. */
export function formatMetric(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—'
  if (!Number.isFinite(value)) return '∞'
  if (Number.isInteger(value)) return String(value)
  return Math.abs(value) >= 10 ** digits ? value.toFixed(0) : String(+value.toPrecision(digits))
}

/**
 * A sweep's knee as read: `< min` when even the lowest rate failed, `≥ max` when the highest
 * passed (the search never saw it fail, so the knee is somewhere above), else the rate.
 */
export function formatKnee(
  knee: number | null | undefined,
  sweep: { readonly min: number; readonly max: number } | null | undefined,
): string {
  if (knee === null) return `< ${sweep?.min ?? '?'}`
  if (knee !== undefined && sweep && knee >= sweep.max) return `≥ ${sweep.max}`
  return formatMetric(knee)
}

export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return `${(value * 100).toFixed(1)} %`
}

/** The columns of the policy table, shared by the Markdown and HTML reports. */
export const POLICY_COLUMNS: ReadonlyArray<{
  readonly title: string
  readonly cell: (r: PolicyResult) => string
}> = [
  { title: 'TTFT p50 ms', cell: (r) => formatMetric(r.ttftP50Ms) },
  { title: 'TTFT p90 ms', cell: (r) => formatMetric(r.ttftP90Ms) },
  { title: 'TTFT p99 ms', cell: (r) => formatMetric(r.ttftP99Ms) },
  { title: 'ITL p50 ms', cell: (r) => formatMetric(r.itlP50Ms) },
  { title: 'ITL p99 ms', cell: (r) => formatMetric(r.itlP99Ms) },
  { title: 'e2e p50 ms', cell: (r) => formatMetric(r.e2eP50Ms) },
  { title: 'e2e p99 ms', cell: (r) => formatMetric(r.e2eP99Ms) },
  { title: 'done', cell: (r) => String(r.completed) },
  { title: 'failed', cell: (r) => String(r.failed) },
  { title: 'req/s', cell: (r) => formatMetric(r.requestsPerSec) },
  { title: 'out tok/s', cell: (r) => formatMetric(r.outputTokensPerSec) },
  { title: 'goodput/s', cell: (r) => formatMetric(r.goodputPerSec) },
  { title: 'hit rate', cell: (r) => formatPercent(r.prefixHitRate) },
  { title: 'imbalance', cell: (r) => formatMetric(r.imbalance) },
]
