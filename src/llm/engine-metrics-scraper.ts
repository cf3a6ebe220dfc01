import { request } from 'undici'
import type { Clock, Timer } from '../util/clock.ts'
import { parseEngineMetrics } from './engine-metrics-parse.ts'
import {
  type EngineMetricsSource,
  type EngineSnapshot,
  type KvLayout,
  kvLayoutOf,
} from './engine-snapshot.ts'

export interface ScrapeTarget {
  readonly id: string
  readonly origin: string
}

export interface EngineMetricsScraperOptions {
  readonly intervalMs: number
  /** A snapshot older than this counts as unknown. Default 3 × interval. */
  readonly staleAfterMs?: number | undefined
  readonly timeoutMs?: number
  readonly path?: string
}

export interface EngineMetricsScraper extends EngineMetricsSource {
  setTargets(targets: readonly ScrapeTarget[]): void
  /** Scrapes every target once now; resolves when all answered or failed. */
  scrapeNow(): Promise<void>
  close(): void
}

/**
 * Polls each endpoint's `/metrics` on an interval. A target that fails or stops answering ages
 * out: `get` returns undefined for it, so a policy treats it as unknown rather than idle.
 */
export function createEngineMetricsScraper(
  options: EngineMetricsScraperOptions,
  deps: { readonly clock: Clock },
): EngineMetricsScraper {
  const staleAfterMs = options.staleAfterMs ?? options.intervalMs * 3
  const timeoutMs = options.timeoutMs ?? Math.max(500, options.intervalMs)
  const path = options.path ?? '/metrics'
  const snapshots = new Map<string, EngineSnapshot>()
  const layouts = new Map<string, KvLayout>()
  let targets: readonly ScrapeTarget[] = []
  let timer: Timer | undefined
  let closed = false

  const scrapeOne = async (target: ScrapeTarget) => {
    try {
      const res = await request(`${target.origin}${path}`, {
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      const text = await res.body.text()
      if (res.statusCode !== 200) return
      const snapshot = parseEngineMetrics(text, deps.clock.now())
      if (!snapshot) return
      snapshots.set(target.id, snapshot)
      const layout = kvLayoutOf(snapshot)
      if (layout) layouts.set(target.id, layout)
    } catch {
      // A failed scrape leaves the old snapshot to age out; the policy sees "unknown" soon.
    }
  }

  const scrapeNow = async () => {
    await Promise.all(targets.map(scrapeOne))
  }

  const schedule = () => {
    if (closed) return
    timer = deps.clock.setTimer(options.intervalMs, () => {
      void scrapeNow().finally(schedule)
    })
  }

  return {
    get(endpointId) {
      const snapshot = snapshots.get(endpointId)
      if (!snapshot || deps.clock.now() - snapshot.atMs > staleAfterMs) return undefined
      return snapshot
    },
    kvLayout: (endpointId) => layouts.get(endpointId),
    setTargets(next) {
      targets = next
      const ids = new Set(next.map((t) => t.id))
      for (const id of snapshots.keys()) if (!ids.has(id)) snapshots.delete(id)
      for (const id of layouts.keys()) if (!ids.has(id)) layouts.delete(id)
      if (!timer && !closed && next.length > 0) {
        void scrapeNow()
        schedule()
      }
    },
    scrapeNow,
    close() {
      closed = true
      timer?.clear()
    },
  }
}
