import { findPicker } from '../balancer/picker-registry.ts'
import type { UpstreamConfig } from '../config/schema.ts'
import {
  createEngineMetricsScraper,
  type EngineMetricsScraper,
  type EngineMetricsScraperDeps,
  type EngineMetricsScraperOptions,
} from '../llm/engine-metrics-scraper.ts'
import type { EngineMetricsSource } from '../llm/engine-snapshot.ts'
import type { Clock } from '../util/clock.ts'
import type { UpstreamRuntime } from './proxy-runtime.ts'

/** One instance's engine-metrics scrapers, one per upstream whose config or policy wants them. */
export interface EngineMetricsScrapers {
  /**
   * An upstream's engine metrics, for its group to keep for as long as it lives: it reads through
   * to whichever scraper the upstream has now, so a reload that switches scraping on (a policy
   * that uses it) or off reaches the group's picker. Unknown while none runs.
   */
  sourceFor(upstream: string): EngineMetricsSource
  /** Since an endpoint's last good reading; undefined where nothing has been read. */
  readingAgeMs(upstream: string, endpointId: string): number | undefined
  /** The endpoints scraped now, by upstream: those of the last `sync`. */
  scrapedEndpoints(): Iterable<ScrapedEndpoint>
  /**
   * Matches the running scrapers to a config snapshot's upstreams: starts the missing ones,
   * applies new settings and endpoints to the rest, and closes those no longer wanted.
   */
  sync(upstreams: ReadonlyMap<string, UpstreamRuntime>): void
  close(): void
}

export interface ScrapedEndpoint {
  readonly upstream: string
  readonly endpointId: string
}

export interface EngineMetricsScrapersDeps {
  readonly clock: Clock
  /** A scrape of the upstream's endpoint gave no reading, for `reason`. */
  readonly onScrapeFailed?:
    | ((upstream: string, endpointId: string, reason: string) => void)
    | undefined
  /** A scrape of the upstream's endpoint gave a reading. */
  readonly onReading?: ((upstream: string, endpointId: string) => void) | undefined
  /** The engine behind the upstream's endpoint restarted (its counters went down). */
  readonly onRestart?: ((upstream: string, endpointId: string) => void) | undefined
  /** Tests swap it; default `createEngineMetricsScraper`. */
  readonly createScraper?: (
    options: EngineMetricsScraperOptions,
    deps: EngineMetricsScraperDeps,
  ) => EngineMetricsScraper
}

export function createEngineMetricsScrapers(
  deps: EngineMetricsScrapersDeps,
): EngineMetricsScrapers {
  const createScraper = deps.createScraper ?? createEngineMetricsScraper
  const scrapers = new Map<string, EngineMetricsScraper>()
  return {
    sourceFor: (upstream) => ({
      get: (endpointId) => scrapers.get(upstream)?.get(endpointId),
      kvLayout: (endpointId) => scrapers.get(upstream)?.kvLayout(endpointId),
    }),
    readingAgeMs: (upstream, endpointId) => scrapers.get(upstream)?.readingAgeMs(endpointId),
    *scrapedEndpoints() {
      for (const [upstream, scraper] of scrapers) {
        for (const endpointId of scraper.targetIds()) yield { upstream, endpointId }
      }
    },
    sync(upstreams) {
      const wanted = new Map<string, EngineMetricsScraperOptions>()
      for (const [name, upstream] of upstreams) {
        const options = scrapeOptionsOf(upstream.group.config)
        if (options) wanted.set(name, options)
      }
      for (const [name, scraper] of scrapers) {
        if (wanted.has(name)) continue
        scraper.close()
        scrapers.delete(name)
      }
      for (const [name, options] of wanted) {
        const upstream = upstreams.get(name)!
        let scraper = scrapers.get(name)
        if (scraper) {
          scraper.configure(options)
        } else {
          scraper = createScraper(options, {
            clock: deps.clock,
            onScrapeFailed: (endpointId, reason) => deps.onScrapeFailed?.(name, endpointId, reason),
            onReading: (endpointId) => deps.onReading?.(name, endpointId),
            onRestart: (endpointId) => deps.onRestart?.(name, endpointId),
          })
          scrapers.set(name, scraper)
        }
        scraper.setTargets(
          upstream.group.endpoints().map((e) => ({ id: e.id, origin: e.spec.origin })),
        )
      }
    },
    close() {
      for (const scraper of scrapers.values()) scraper.close()
      scrapers.clear()
    },
  }
}

/** How an upstream's engines are scraped, when its config or its policy wants their metrics. */
function scrapeOptionsOf(upstream: UpstreamConfig): EngineMetricsScraperOptions | undefined {
  if (upstream.engineMetrics === false) return undefined
  const wanted: { scrapeIntervalMs?: number; staleAfterMs?: number | undefined } | undefined =
    upstream.engineMetrics ?? (findPicker(upstream.policy)?.usesEngineMetrics ? {} : undefined)
  if (!wanted) return undefined
  return { intervalMs: wanted.scrapeIntervalMs ?? 1000, staleAfterMs: wanted.staleAfterMs }
}
