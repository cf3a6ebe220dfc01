import { monitorEventLoopDelay } from 'node:perf_hooks'

/** Event-loop delay, excess over the sampling interval, in milliseconds. */
export interface EventLoopDelay {
  readonly maxMs: number
  readonly p99Ms: number
}

const PREFIX = 'aya-bench-event-loop '
const RESOLUTION_MS = 10
const INTERVAL_MS = 500

/**
 * Preloaded into every process the bench starts (`node --import <this> ...`): it reports the
 * process's event-loop delay on stderr every half second and resets, so the bench can keep the
 * worst over exactly the replay. Node's histogram records whole timer intervals, so the
 * resolution is subtracted.
 */
const PROBE_SOURCE = `import { monitorEventLoopDelay } from 'node:perf_hooks'
const h = monitorEventLoopDelay({ resolution: ${RESOLUTION_MS} })
h.enable()
setInterval(() => {
  const ms = (ns) => Math.max(0, ns / 1e6 - ${RESOLUTION_MS})
  process.stderr.write('${PREFIX}' + JSON.stringify({ maxMs: ms(h.max), p99Ms: ms(h.percentile(99)) }) + '\\n')
  h.reset()
}, ${INTERVAL_MS}).unref()
`

export const EVENT_LOOP_PROBE_IMPORT = `data:text/javascript,${encodeURIComponent(PROBE_SOURCE)}`

export function parseProbeLine(line: string): EventLoopDelay | undefined {
  if (!line.startsWith(PREFIX)) return undefined
  try {
    const value = JSON.parse(line.slice(PREFIX.length)) as EventLoopDelay
    return typeof value.maxMs === 'number' && typeof value.p99Ms === 'number' ? value : undefined
  } catch {
    return undefined
  }
}

export interface EventLoopMonitor {
  /** The worst delay since the last call, then resets. */
  take(): EventLoopDelay
  close(): void
}

/** The same measurement for the bench's own process. */
export function monitorOwnEventLoop(): EventLoopMonitor {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  h.enable()
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS)
  return {
    take() {
      const value = { maxMs: ms(h.max), p99Ms: ms(h.percentile(99)) }
      h.reset()
      return value
    },
    close: () => h.disable(),
  }
}
