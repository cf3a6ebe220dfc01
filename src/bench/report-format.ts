import type { PolicyResult } from './policy-summary.ts'
import type { BenchReport } from './report-types.ts'

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

/** A titled table of the report, rendered alike in report.md and report.html. */
export interface ReportSection {
  readonly title: string
  /** A line above the table. */
  readonly intro?: string
  readonly header: readonly string[]
  readonly rows: readonly (readonly string[])[]
  /** A line below the table. */
  readonly note?: string
}

/**
 * The report's tables: the policies (with the rate scale each ran at, for a sweep), the knees
 * and the HTTP confirmations. Both renderers draw these, so neither leaves out what the other
 * shows.
 */
export function reportSections(report: BenchReport): ReportSection[] {
  const { meta } = report
  const out: ReportSection[] = []
  const names = Object.keys(report.policies)
  if (names.length > 0) {
    out.push({
      title: report.knees ? "At each policy's knee" : 'Results',
      header: [
        'policy',
        ...(report.knees ? ['rate scale'] : []),
        ...POLICY_COLUMNS.map((c) => c.title),
      ],
      rows: names.map((name) => [
        name,
        ...(report.knees ? [formatKnee(report.knees[name], meta.sweep)] : []),
        ...POLICY_COLUMNS.map((c) => c.cell(report.policies[name]!)),
      ]),
      note: 'Failed requests count as infinite TTFT and e2e (∞). Times are trace milliseconds.',
    })
  }
  if (report.knees) {
    out.push({
      title: 'Knees',
      intro: `Highest rate scale with TTFT p90 ≤ ${meta.slo.ttftMs} ms and failed ≤ 1 %, searched in ${meta.sweep?.min}–${meta.sweep?.max} to ${((meta.sweep?.precision ?? 0) * 100).toFixed(1)} %.`,
      header: ['policy', 'knee', 'points tried'],
      rows: Object.entries(report.knees).map(([name, knee]) => [
        name,
        formatKnee(knee, meta.sweep),
        String(report.sweep?.[name]?.length ?? 0),
      ]),
    })
  }
  if (report.confirm) {
    out.push({
      title: 'HTTP confirmation at the DES knees',
      header: ['policy', 'rate scale', ...POLICY_COLUMNS.map((c) => c.title)],
      rows: Object.entries(report.confirm).map(([name, r]) => [
        name,
        formatMetric(r.rateScale),
        ...POLICY_COLUMNS.map((c) => c.cell(r)),
      ]),
    })
  }
  return out
}
