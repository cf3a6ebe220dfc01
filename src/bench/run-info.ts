import { sortedNumbers } from './percentiles.ts'
import type { PolicySeries, RunInfo } from './report-types.ts'
import type { RunRecord } from './run-record.ts'

/** Validity and diagnostics of one run, for `runs.<policy>`. DES runs are always valid. */
export function runInfoOf(record: RunRecord): RunInfo {
  const failures: Record<string, number> = {}
  for (const o of record.outcomes) {
    if (o.ok && o.firstContentMs !== undefined) continue
    const reason = o.error?.startsWith('HTTP ') ? `HTTP ${o.status}` : (o.error ?? 'no content')
    failures[reason] = (failures[reason] ?? 0) + 1
  }
  const { valid, invalidReason, ...diagnostics } = record.diagnostics as {
    valid?: boolean
    invalidReason?: string
  } & Record<string, unknown>
  return {
    valid: valid ?? true,
    ...(invalidReason === undefined ? {} : { invalidReason }),
    promptTokenMismatches: record.promptTokenMismatches,
    failures,
    preemptions: record.replicas.reduce((sum, r) => sum + r.preemptions, 0),
    diagnostics,
  }
}

/** Chart data: load samples and a TTFT CDF of at most `maxPoints` points. */
export function seriesOf(record: RunRecord, maxPoints = 200): PolicySeries {
  const ttft = sortedNumbers(
    record.outcomes.map((o) =>
      o.ok && o.firstContentMs !== undefined
        ? o.firstContentMs - o.sendMs
        : Number.POSITIVE_INFINITY,
    ),
  )
  const n = ttft.length
  const cdf: Array<readonly [number, number]> = []
  const step = Math.max(1, Math.floor(n / maxPoints))
  for (let i = 0; i < n; i += step) {
    if (Number.isFinite(ttft[i]!)) cdf.push([ttft[i]!, (i + 1) / n])
  }
  const last = n - 1
  if (n > 0 && Number.isFinite(ttft[last]!) && cdf.at(-1)?.[1] !== 1) cdf.push([ttft[last]!, 1])
  return { samples: record.samples, ttftCdf: cdf }
}

/** JSON with NaN and ±Infinity as null (report.json documents null as "infinite or undefined"). */
export function toJson(value: unknown): string {
  return `${JSON.stringify(
    value,
    (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  )}\n`
}
