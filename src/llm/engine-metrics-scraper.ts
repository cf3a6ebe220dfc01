import type { Clock, Timer } from '../util/clock.ts'
import { readEngineMetrics } from './engine-metrics-parse.ts'
import {
  type EngineMetricsSource,
  type EngineSnapshot,
  type KvLayout,
  kvLayoutOf,
} from './engine-snapshot.ts'
import { fetchMetricsPage } from './fetch-metrics-page.ts'

export interface ScrapeTarget {
  readonly id: string
  readonly origin: string
}

export interface EngineMetricsScraperOptions {
  readonly intervalMs: number
  /** A snapshot older than this counts as unknown. Default 3 × interval. */
  readonly staleAfterMs?: number | undefined
  /**
   * How long one target's scrape may take in all, body included, before it is abandoned. Default
   * the interval (at least 500 ms), and never past the staleness bound.
   */
  readonly timeoutMs?: number | undefined
  /** A `/metrics` body longer than this, on the wire or decoded, is abandoned. Default 4 MiB. */
  readonly maxBodyBytes?: number | undefined
  readonly path?: string | undefined
}

export interface EngineMetricsScraperDeps {
  readonly clock: Clock
  /**
   * A scrape gave no reading: refused, timed out, not 200 after redirects, too large, an encoding
   * other than gzip, or not metrics. `reason` says which, for the operator.
   */
  readonly onScrapeFailed?: ((endpointId: string, reason: string) => void) | undefined
  /** A scrape gave a reading. */
  readonly onReading?: ((endpointId: string) => void) | undefined
  /**
   * The engine restarted since the last reading that carried its cumulative prefix-cache lookups:
   * they went down,
   * as only a new process's counters do. Its prefix cache is empty now, whatever the router
   * believed it held.
   */
  readonly onRestart?: ((endpointId: string) => void) | undefined
}

export interface EngineMetricsScraper extends EngineMetricsSource {
  /**
   * Since the endpoint's last good reading was asked for, stale or not: for operators, since the
   * policies see only fresh readings. Undefined before the first one, or for no target.
   */
  readingAgeMs(endpointId: string): number | undefined
  setTargets(targets: readonly ScrapeTarget[]): void
  /** The ids of the targets it scrapes now. */
  targetIds(): Iterable<string>
  /** New settings (a reload), keeping what was read: the next scrape runs at the new interval. */
  configure(options: EngineMetricsScraperOptions): void
  /** Scrapes every target once now; resolves when all answered, failed or ran out of time. */
  scrapeNow(): Promise<void>
  /** Stops the timer and abandons the scrapes in flight. */
  close(): void
}

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

interface Settings {
  readonly intervalMs: number
  readonly staleAfterMs: number
  readonly timeoutMs: number
  readonly maxBodyBytes: number
  readonly path: string
}

function settingsOf(options: EngineMetricsScraperOptions): Settings {
  const staleAfterMs = options.staleAfterMs ?? options.intervalMs * 3
  return {
    intervalMs: options.intervalMs,
    staleAfterMs,
    timeoutMs: options.timeoutMs ?? Math.min(staleAfterMs, Math.max(500, options.intervalMs)),
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    path: options.path ?? '/metrics',
  }
}

/** One target: its scrape in flight, if any, and how to abandon it. */
interface TargetState {
  readonly target: ScrapeTarget
  inFlight: Promise<void> | undefined
  abort: AbortController | undefined
}

/**
 * Polls each endpoint's `/metrics` on an interval. Targets are independent: each scrape has its
 * own deadline, and a target still being read when the interval comes round is skipped, so one
 * slow engine cannot hold the others' readings back. A target that fails or stops answering ages
 * out: `get` returns undefined for it, so a policy treats it as unknown rather than idle.
 */
export function createEngineMetricsScraper(
  options: EngineMetricsScraperOptions,
  deps: EngineMetricsScraperDeps,
): EngineMetricsScraper {
  let settings = settingsOf(options)
  const snapshots = new Map<string, EngineSnapshot>()
  const layouts = new Map<string, KvLayout>()
  /** Each target's last cumulative prefix-cache lookups, to tell a restart. */
  const prefixQueries = new Map<string, number>()
  const targets = new Map<string, TargetState>()
  let timer: Timer | undefined
  let closed = false

  const current = (state: TargetState) => !closed && targets.get(state.target.id) === state

  /** Why the engine gave no reading, or undefined when it gave one (or the target went). */
  const read = async (state: TargetState, signal: AbortSignal): Promise<string | undefined> => {
    const { maxBodyBytes, path } = settings
    // Stamped when asked: the engine's numbers are from no earlier. Stamped when the answer came,
    // a prefill that ended meanwhile would count in its queue yet not as ended since the reading
    // (aya's foreign-queue correction would take it for another router's).
    const askedAtMs = deps.clock.now()
    const page = await fetchMetricsPage(`${state.target.origin}${path}`, { maxBodyBytes, signal })
    if (!page.ok) return page.reason
    // Removed, moved to another server, or closed while it was read: the reading is not theirs.
    if (!current(state)) return undefined
    const reading = readEngineMetrics(page.text, askedAtMs)
    if (!('snapshot' in reading)) return `no usable load: ${reading.reason}`
    const { snapshot } = reading
    snapshots.set(state.target.id, snapshot)
    // Against the last reading that had the counter: one page without it hides no restart.
    const queries = snapshot.prefixQueriesTotal
    if (queries !== undefined) {
      const before = prefixQueries.get(state.target.id)
      prefixQueries.set(state.target.id, queries)
      if (before !== undefined && queries < before) deps.onRestart?.(state.target.id)
    }
    const layout = kvLayoutOf(snapshot)
    if (layout) layouts.set(state.target.id, layout)
    deps.onReading?.(state.target.id)
    return undefined
  }

  const scrape = (state: TargetState): Promise<void> => {
    if (state.inFlight) return state.inFlight
    const abort = new AbortController()
    const { timeoutMs } = settings
    const deadline = deps.clock.setTimer(timeoutMs, () => abort.abort())
    state.abort = abort
    // A failed scrape leaves the old snapshot to age out; the policy sees "unknown" soon.
    const failed = (reason: string) => {
      if (current(state)) deps.onScrapeFailed?.(state.target.id, reason)
    }
    state.inFlight = read(state, abort.signal)
      .then(
        (reason) => {
          if (reason !== undefined) failed(reason)
        },
        (error: unknown) =>
          failed(
            abort.signal.aborted
              ? `no page within ${timeoutMs} ms`
              : error instanceof Error
                ? error.message
                : String(error),
          ),
      )
      .finally(() => {
        deadline.clear()
        state.inFlight = undefined
        state.abort = undefined
      })
    return state.inFlight
  }

  const tick = () => {
    timer = undefined
    if (closed) return
    for (const state of targets.values()) void scrape(state)
    schedule()
  }

  const schedule = () => {
    if (closed || timer || targets.size === 0) return
    timer = deps.clock.setTimer(settings.intervalMs, tick)
  }

  const drop = (id: string) => {
    targets.get(id)?.abort?.abort()
    targets.delete(id)
    snapshots.delete(id)
    layouts.delete(id)
    prefixQueries.delete(id)
  }

  return {
    get(endpointId) {
      const snapshot = snapshots.get(endpointId)
      if (!snapshot || deps.clock.now() - snapshot.atMs > settings.staleAfterMs) return undefined
      return snapshot
    },
    kvLayout: (endpointId) => layouts.get(endpointId),
    readingAgeMs(endpointId) {
      const snapshot = snapshots.get(endpointId)
      return snapshot === undefined ? undefined : deps.clock.now() - snapshot.atMs
    },
    targetIds: () => targets.keys(),
    setTargets(next) {
      if (closed) return
      const origins = new Map(next.map((t) => [t.id, t.origin]))
      for (const [id, state] of targets) {
        // An id that now names another server starts over: what was read is about the old one.
        if (origins.get(id) !== state.target.origin) drop(id)
      }
      for (const target of next) {
        if (targets.has(target.id)) continue
        const state: TargetState = { target, inFlight: undefined, abort: undefined }
        targets.set(target.id, state)
        void scrape(state)
      }
      if (targets.size === 0) {
        timer?.clear()
        timer = undefined
      }
      schedule()
    },
    configure(next) {
      const before = settings
      settings = settingsOf(next)
      if (settings.intervalMs !== before.intervalMs && timer) {
        timer.clear()
        timer = undefined
        schedule()
      }
    },
    scrapeNow: async () => {
      await Promise.all([...targets.values()].map(scrape))
    },
    close() {
      closed = true
      timer?.clear()
      timer = undefined
      for (const state of targets.values()) state.abort?.abort()
    },
  }
}
