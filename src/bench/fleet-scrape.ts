import { Agent } from 'undici'
import { type EngineCounters, latenessBetween, scrapeEngine } from './engine-scrape.ts'
import { replicaId } from './policy-run.ts'
import type { LoadSample, ReplicaDelta } from './run-record.ts'

/** Validity: simulator step lateness (engine time, so already × X) against 5 % of the TTFT SLO. */
export const MAX_LATENESS_SLO_FRACTION = 0.05

/** Reads every engine's `/metrics` of a simulated fleet over its own small connection pool. */
export interface FleetScraper {
  scrapeAll(): Promise<EngineCounters[]>
  close(): Promise<void>
}

export function createFleetScraper(urls: readonly string[]): FleetScraper {
  const dispatcher = new Agent({ connections: 2 * urls.length })
  return {
    scrapeAll: () => Promise.all(urls.map((url) => scrapeEngine(url, dispatcher))),
    close: () => dispatcher.close(),
  }
}

function hitRateSince(
  now: readonly EngineCounters[],
  base: readonly EngineCounters[],
): number | null {
  let queries = 0
  let hits = 0
  for (const [i, c] of now.entries()) {
    queries += c.prefixQueries - base[i]!.prefixQueries
    hits += c.prefixHits - base[i]!.prefixHits
  }
  return queries === 0 ? null : hits / queries
}

/** Samples per-replica load and the fleet hit rate every `intervalRealMs` until stopped. */
export function startLoadSampling(
  scraper: FleetScraper,
  base: readonly EngineCounters[],
  options: { readonly intervalRealMs: number; readonly traceNow: () => number },
  samples: LoadSample[],
): { stop(): Promise<void> } {
  let chain = Promise.resolve()
  const timer = setInterval(() => {
    chain = chain.then(async () => {
      const atMs = options.traceNow()
      const counters = await scraper.scrapeAll().catch(() => undefined)
      if (!counters) return
      samples.push({
        atMs,
        load: counters.map((c) => c.running + c.waiting),
        hitRate: hitRateSince(counters, base),
      })
    })
  }, options.intervalRealMs)
  return {
    stop() {
      clearInterval(timer)
      return chain
    },
  }
}

export function replicaDeltas(
  before: readonly EngineCounters[],
  after: readonly EngineCounters[],
): ReplicaDelta[] {
  return after.map((c, i) => ({
    id: replicaId(i),
    prefixQueries: c.prefixQueries - before[i]!.prefixQueries,
    prefixHits: c.prefixHits - before[i]!.prefixHits,
    preemptions: c.preemptions - before[i]!.preemptions,
  }))
}

/** The worst replica's step lateness over the run, and whether the run is valid by it. */
export function validityOf(
  before: readonly EngineCounters[],
  after: readonly EngineCounters[],
  sloTtftMs: number,
): Record<string, unknown> {
  const lateness = after.map((c, i) => latenessBetween(before[i]!, c))
  const worst = {
    meanMs: Math.max(...lateness.map((l) => l.meanMs)),
    p99Ms: Math.max(...lateness.map((l) => l.p99Ms)),
    maxMs: Math.max(...lateness.map((l) => l.maxMs)),
  }
  const limitMs = MAX_LATENESS_SLO_FRACTION * sloTtftMs
  if (worst.p99Ms <= limitMs) return { valid: true, stepLatenessMs: worst }
  return {
    valid: false,
    invalidReason: `simulator step lateness p99 ${worst.p99Ms.toFixed(1)} ms (trace time) exceeds 5 % of the TTFT SLO (${limitMs} ms)`,
    stepLatenessMs: worst,
  }
}
