import {
  type EngineMetricsSource,
  type EngineSnapshot,
  type KvLayout,
  kvLayoutOf,
} from '../llm/engine-snapshot.ts'
import type { Engine } from '../sim/engine.ts'
import type { Clock, Timer } from '../util/clock.ts'

export interface EmulatedEngineMetricsOptions {
  readonly intervalMs: number
  /** A snapshot older than this reads as unknown, as in the HTTP scraper. Default 3 × interval. */
  readonly staleAfterMs?: number
}

export interface EmulatedEngineMetrics extends EngineMetricsSource {
  /** Takes the first snapshots now and then every interval, as the scraper does on `setTargets`. */
  start(): void
  close(): void
}

/** What one engine's `/metrics` would say right now, as `readEngineMetrics` would read it. */
export function engineSnapshotOf(engine: Engine, atMs: number): EngineSnapshot {
  const s = engine.stats()
  return {
    atMs,
    running: s.running,
    waiting: s.waiting,
    kvUsage: s.kvCacheUsage,
    prefixQueriesTotal: s.prefixCacheQueries,
    prefixHitsTotal: s.prefixCacheHits,
    preemptionsTotal: s.preemptions,
    blockSize: engine.profile.blockSizeTokens,
    numGpuBlocks: engine.profile.numGpuBlocks,
  }
}

/**
 * The virtual-time stand-in for `createEngineMetricsScraper`: snapshots of the engines' stats
 * taken every `intervalMs` of the injected clock, so policies that read engine metrics see data
 * exactly as stale as they would over HTTP.
 */
export function createEmulatedEngineMetrics(
  options: EmulatedEngineMetricsOptions,
  deps: { readonly clock: Clock; readonly engines: ReadonlyMap<string, Engine> },
): EmulatedEngineMetrics {
  const { clock, engines } = deps
  const staleAfterMs = options.staleAfterMs ?? options.intervalMs * 3
  const snapshots = new Map<string, EngineSnapshot>()
  const layouts = new Map<string, KvLayout>()
  let timer: Timer | undefined
  let isClosed = false

  const scrape = (): void => {
    const atMs = clock.now()
    for (const [id, engine] of engines) {
      const snapshot = engineSnapshotOf(engine, atMs)
      snapshots.set(id, snapshot)
      if (!layouts.has(id)) {
        const layout = kvLayoutOf(snapshot)
        if (layout) layouts.set(id, layout)
      }
    }
  }
  const schedule = (): void => {
    if (isClosed) return
    timer = clock.setTimer(options.intervalMs, () => {
      scrape()
      schedule()
    })
  }
  return {
    get(id) {
      const snapshot = snapshots.get(id)
      if (!snapshot || clock.now() - snapshot.atMs > staleAfterMs) return undefined
      return snapshot
    },
    kvLayout: (id) => layouts.get(id),
    start() {
      scrape()
      schedule()
    },
    close() {
      isClosed = true
      timer?.clear()
    },
  }
}
