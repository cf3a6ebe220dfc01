import { monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * Event-loop delay: the excess of each timer sample over the sampling interval. `p99Ms` is the
 * upper bound of the bucket that holds the 99th percentile of all samples merged.
 */
export interface EventLoopDelay {
  readonly samples: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** One report: sample count, max, and the delay at a few percentiles (ms). */
export interface ProbeReport {
  readonly count: number
  readonly maxMs: number
  readonly percentiles: ReadonlyArray<readonly [number, number]>
}

const PREFIX = 'aya-bench-event-loop '
const RESOLUTION_MS = 10
const INTERVAL_MS = 1000
const REPORTED_PERCENTILES = [50, 75, 90, 95, 98, 99, 99.5, 99.9, 100]
/** Bucket bounds for merging reports, ms. */
const BOUNDS_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]

function excessMs(ns: number): number {
  return Math.max(0, ns / 1e6 - RESOLUTION_MS)
}

/**
 * Preloaded into every process the bench starts (`node --import <this> ...`): once a second it
 * writes the process's event-loop delay to stderr and resets. Node's histogram records whole timer
 * intervals, so the resolution is subtracted.
 */
const PROBE_SOURCE = `import { monitorEventLoopDelay } from 'node:perf_hooks'
const h = monitorEventLoopDelay({ resolution: ${RESOLUTION_MS} })
h.enable()
const ms = (ns) => Math.max(0, ns / 1e6 - ${RESOLUTION_MS})
setInterval(() => {
  const percentiles = ${JSON.stringify(REPORTED_PERCENTILES)}.map((p) => [p, ms(h.percentile(p))])
  const report = { count: h.count, maxMs: ms(h.max), percentiles }
  process.stderr.write('${PREFIX}' + JSON.stringify(report) + '\\n')
  h.reset()
}, ${INTERVAL_MS}).unref()
`

export const EVENT_LOOP_PROBE_IMPORT = `data:text/javascript,${encodeURIComponent(PROBE_SOURCE)}`

export function parseProbeLine(line: string): ProbeReport | undefined {
  if (!line.startsWith(PREFIX)) return undefined
  try {
    const value = JSON.parse(line.slice(PREFIX.length)) as ProbeReport
    return typeof value.count === 'number' && Array.isArray(value.percentiles) ? value : undefined
  } catch {
    return undefined
  }
}

/** Merges reports: samples over each bucket bound, estimated from each report's percentiles. */
export interface EventLoopAccumulator {
  add(report: ProbeReport): void
  result(): EventLoopDelay
  /**
   * Starts over. The next report is dropped too: a probe reports the second that just ended, so
   * the first report after a reset covers time before it (for a child started just before the
   * run, its module loading and warm-up, which once showed as a 100–200 ms "stall" in every run).
   */
  reset(): void
}

export function createEventLoopAccumulator(): EventLoopAccumulator {
  let samples = 0
  let maxMs = 0
  let atOrBelow = BOUNDS_MS.map(() => 0)
  let skipNext = false
  return {
    add(report) {
      if (skipNext) {
        skipNext = false
        return
      }
      if (report.count <= 0) return
      samples += report.count
      maxMs = Math.max(maxMs, report.maxMs)
      for (const [i, bound] of BOUNDS_MS.entries()) {
        let fraction = 0
        for (const [p, ms] of report.percentiles) if (ms <= bound) fraction = Math.max(fraction, p)
        atOrBelow[i]! += (fraction / 100) * report.count
      }
    },
    result() {
      const index = BOUNDS_MS.findIndex((_, i) => atOrBelow[i]! >= 0.99 * samples)
      const p99Ms = samples === 0 ? 0 : index < 0 ? maxMs : Math.min(BOUNDS_MS[index]!, maxMs)
      return { samples, p99Ms, maxMs }
    },
    reset() {
      samples = 0
      maxMs = 0
      atOrBelow = BOUNDS_MS.map(() => 0)
      skipNext = true
    },
  }
}

export interface EventLoopMonitor {
  /** The delay since the last call, then resets. */
  take(): EventLoopDelay
  close(): void
}

/** The same measurement for the bench's own process. */
export function monitorOwnEventLoop(): EventLoopMonitor {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  h.enable()
  return {
    take() {
      const accumulator = createEventLoopAccumulator()
      accumulator.add({
        count: h.count,
        maxMs: excessMs(h.max),
        percentiles: REPORTED_PERCENTILES.map((p) => [p, excessMs(h.percentile(p))] as const),
      })
      h.reset()
      return accumulator.result()
    },
    close: () => h.disable(),
  }
}
