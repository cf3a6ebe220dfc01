// Medians over a cell's rounds, and per-round comparisons between two cells.
import type { Cell, Sample } from './measure.ts'
import { defined, fmtPct, median, range } from './stats.ts'

export interface RunsSummary {
  readonly c50: {
    readonly rounds: number
    readonly requestsPerSec: number | undefined
    readonly requestsPerSecRange: [number, number] | undefined
    readonly proxyCpu: number | undefined
    /** Median CPU seconds the proxy used in one run. */
    readonly proxyCpuS: number | undefined
    readonly upstreamCpu: number | undefined
    /** Worst run's share of the proxy CPU used by something else (see Sample). */
    readonly maxOtherOnProxyCpu: number | undefined
    readonly maxStealOnProxyCpu: number | undefined
    readonly requestsPerCpuS: number | undefined
    readonly requestsPerCpuSRange: [number, number] | undefined
    readonly p50Ms: number | undefined
    readonly p99Ms: number | undefined
  }
  readonly c1: {
    readonly rounds: number
    readonly requestsPerSec: number | undefined
    readonly p50Ms: number | undefined
    readonly p99Ms: number | undefined
  }
  /** Socket errors (of which `timeouts`: responses later than wrk's timeout) and non-2xx/3xx. */
  readonly errors: {
    readonly socket: number
    readonly timeouts: number
    readonly non2xx3xx: number
  }
  /** Runs redone for other load, and runs kept although still over --max-other. */
  readonly noise: { readonly redone: number; readonly contaminated: number }
}

const rps = (s: Sample) => s.wrk.requestsPerSec

export function summarizeRuns(c50: readonly Sample[], c1: readonly Sample[]): RunsSummary {
  const perCpu = defined(c50.map((s) => s.requestsPerCpuS))
  const all = [...c50, ...c1]
  return {
    c50: {
      rounds: c50.length,
      requestsPerSec: median(c50.map(rps)),
      requestsPerSecRange: range(c50.map(rps)),
      proxyCpu: median(c50.map((s) => s.proxyCpu)),
      proxyCpuS: median(c50.map((s) => s.proxyCpuS)),
      upstreamCpu: median(c50.map((s) => s.upstreamCpu)),
      maxOtherOnProxyCpu: range(c50.map((s) => s.otherOnProxyCpu))?.[1],
      maxStealOnProxyCpu: range(c50.map((s) => s.stealOnProxyCpu))?.[1],
      requestsPerCpuS: median(perCpu),
      requestsPerCpuSRange: range(perCpu),
      p50Ms: median(defined(c50.map((s) => s.wrk.p50Ms))),
      p99Ms: median(defined(c50.map((s) => s.wrk.p99Ms))),
    },
    c1: {
      rounds: c1.length,
      requestsPerSec: median(c1.map(rps)),
      p50Ms: median(defined(c1.map((s) => s.wrk.p50Ms))),
      p99Ms: median(defined(c1.map((s) => s.wrk.p99Ms))),
    },
    errors: {
      socket: all.reduce((n, s) => n + s.wrk.socketErrors, 0),
      timeouts: all.reduce((n, s) => n + s.wrk.timeouts, 0),
      non2xx3xx: all.reduce((n, s) => n + s.wrk.non2xx3xx, 0),
    },
    noise: {
      redone: all.reduce((n, s) => n + s.attempts - 1, 0),
      contaminated: all.filter((s) => s.contaminated).length,
    },
  }
}

/** A hop's summary: its runs, and its added p50 at c=1 against `direct` in the same rounds. */
export interface HopSummary extends Omit<RunsSummary, 'c1'> {
  readonly c1: RunsSummary['c1'] & {
    /** Median over rounds of (p50 − direct's p50 in the same round); none for direct itself. */
    readonly addedP50Ms: number | undefined
  }
}

export function summarizeHop(cell: Cell, direct: Cell | undefined): HopSummary {
  const runs = summarizeRuns(cell.c50, cell.c1)
  const addedP50Ms = cell === direct ? undefined : perRoundDifference(cell.c1, direct?.c1, p50Ms)
  return { ...runs, c1: { ...runs.c1, addedP50Ms } }
}

/** `combine` of a metric between two cells' samples of the same round, median'd over rounds. */
function perRound(
  samples: readonly Sample[],
  base: readonly Sample[] | undefined,
  pick: (s: Sample) => number | undefined,
  combine: (a: number, b: number) => number | undefined,
): number | undefined {
  if (!base) return undefined
  const values: number[] = []
  for (const sample of samples) {
    const other = base.find((s) => s.round === sample.round)
    const a = pick(sample)
    const b = other && pick(other)
    const value = a !== undefined && b !== undefined ? combine(a, b) : undefined
    if (value !== undefined) values.push(value)
  }
  return median(values)
}

/** Per-round ratio of a metric between two cells, then the median over rounds. */
export function perRoundRatio(
  samples: readonly Sample[],
  base: readonly Sample[] | undefined,
  pick: (s: Sample) => number | undefined,
): number | undefined {
  return perRound(samples, base, pick, (a, b) => (b > 0 ? a / b : undefined))
}

/** Per-round difference of a metric between two cells, then the median over rounds. */
export function perRoundDifference(
  samples: readonly Sample[],
  base: readonly Sample[] | undefined,
  pick: (s: Sample) => number | undefined,
): number | undefined {
  return perRound(samples, base, pick, (a, b) => a - b)
}

export const requestsPerSec = rps
export const requestsPerCpuS = (s: Sample) => s.requestsPerCpuS
export const p50Ms = (s: Sample) => s.wrk.p50Ms

/** Error and noise lines printed under a run's table. */
export function runsReport(
  summaries: readonly (RunsSummary & { readonly name: string })[],
  connections: number,
  waitedS: number,
): string {
  const lines: string[] = []
  for (const s of summaries) {
    if (s.errors.socket + s.errors.non2xx3xx === 0) continue
    lines.push(
      `WARNING ${s.name}: ${s.errors.socket} socket errors (${s.errors.timeouts} timeouts), ` +
        `${s.errors.non2xx3xx} non-2xx/3xx`,
    )
  }
  const noise = summaries
    .map((s) => `${s.name} ${fmtPct(s.c50.maxOtherOnProxyCpu)}/${fmtPct(s.c50.maxStealOnProxyCpu)}`)
    .join(', ')
  lines.push(`noise, worst c=${connections} run, CPU 1 other/steal: ${noise}`)
  const redone = summaries.map((s) => `${s.name} ${s.noise.redone}/${s.noise.contaminated}`)
  lines.push(
    `runs redone for other load / kept though over --max-other: ${redone.join(', ')}; ` +
      `waited ${Math.round(waitedS)} s for a quiet machine`,
  )
  return `${lines.join('\n')}\n`
}
