import type { MachineInfo } from './machine-info.ts'
import type { PolicyResult } from './policy-summary.ts'
import type { LoadSample } from './run-record.ts'
import type { TraceTiming } from './trace-request.ts'

/** `report.json`; every key is described in docs/bench.md. Non-finite numbers are written as null. */
export interface BenchReport {
  readonly meta: ReportMeta
  readonly policies: Record<string, PolicyResult>
  /** Per policy: validity and what it rests on (lateness, event-loop delay, config used). */
  readonly runs: Record<string, RunInfo>
  readonly knees?: Record<string, number | null>
  readonly sweep?: Record<string, Array<PolicyResult & { readonly rateScale: number }>>
  /** `sweep --confirm-http`: an HTTP run at each policy's DES knee. */
  readonly confirm?: Record<string, PolicyResult & { readonly rateScale: number }>
}

export interface ReportMeta {
  readonly trace: string
  readonly format: string
  readonly command: 'run' | 'sweep'
  readonly mode: 'http' | 'des'
  readonly window: { readonly startS: number; readonly endS: number } | null
  readonly timing: TraceTiming
  readonly rebase: { readonly traceStartMs: number; readonly firstKeptMs: number }
  readonly rateScale: number
  readonly rate: number | null
  readonly lengthScale: number
  readonly speedup: number
  readonly seed: number
  readonly requests: number
  /** Trace seconds from the first to the last arrival, after rate scaling. */
  readonly arrivalSpanS: number
  readonly maxTokens: number
  readonly blockTokens: number | null
  readonly fleet: {
    readonly replicas: number
    /** Router replicas in front of the engines (`--routers`). */
    readonly routers: number
    /** The routers share one state store (`--shared-state`). */
    readonly sharedState: boolean
    readonly profile: string
    readonly kvBlocks: number
    readonly kvTokens: number
    readonly cacheDemandTokens: number
    readonly cacheDemandPercent: number
  }
  readonly clipping: { readonly maxInputTokens: number; readonly clippedRequests: number }
  readonly slo: { readonly ttftMs: number; readonly itlMs: number }
  readonly scrapeIntervalMs: number
  readonly timeoutMs: number
  readonly sweep: { readonly min: number; readonly max: number; readonly precision: number } | null
  readonly commit: string | null
  readonly dirty: boolean | null
  readonly machine: MachineInfo
  readonly idealPrefixHitRate: number
  readonly lruBoundPrefixHitRate: number
  /**
   * The fleet's prefill ceiling: its prefill rate with every step full of prefill, the uncached
   * prompt tokens this run offers a second (with the global-LRU bound's hits), and the rate scale
   * at which the two are equal (for ShareGPT, the multiple of this run's arrival rate). Null for
   * a replay without a span or uncached prompt.
   */
  readonly prefillCeiling: {
    readonly fleetPrefillTokensPerSec: number
    readonly uncachedPromptTokensPerSec: number
    readonly rateScale: number
  } | null
  /** Every run valid (see `runs.<policy>.valid`). */
  readonly valid: boolean
  readonly createdAt: string
}

export interface RunInfo {
  readonly valid: boolean
  readonly invalidReason?: string
  readonly promptTokenMismatches: number
  readonly failures: Record<string, number>
  readonly preemptions: number
  readonly diagnostics: Record<string, unknown>
}

/** Chart data, kept out of report.json: `series.json` and the HTML report. */
export interface PolicySeries {
  readonly samples: readonly LoadSample[]
  /** TTFT CDF points [ms, fraction], failures never reached. */
  readonly ttftCdf: ReadonlyArray<readonly [number, number]>
}
