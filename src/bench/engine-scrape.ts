import type { Dispatcher } from 'undici'
import { request } from 'undici'
import { type PromSample, parsePrometheusText } from '../llm/prometheus-text.ts'

/** The simulator counters a run reads from one engine's `/metrics`. */
export interface EngineCounters {
  readonly running: number
  readonly waiting: number
  readonly prefixQueries: number
  readonly prefixHits: number
  readonly preemptions: number
  /** Step lateness, engine seconds: histogram buckets (upper bound → cumulative count). */
  readonly lateness: {
    readonly buckets: ReadonlyMap<number, number>
    readonly sum: number
    readonly count: number
  }
  readonly latenessMaxMs: number
}

function total(samples: readonly PromSample[], name: string): number {
  let sum = 0
  for (const s of samples) if (s.name === name) sum += s.value
  return sum
}

export function parseEngineCounters(text: string): EngineCounters {
  const samples = parsePrometheusText(text)
  const buckets = new Map<number, number>()
  for (const s of samples) {
    if (s.name !== 'aya_sim_step_lateness_seconds_bucket') continue
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le)
    buckets.set(le, (buckets.get(le) ?? 0) + s.value)
  }
  return {
    running: total(samples, 'vllm:num_requests_running'),
    waiting: total(samples, 'vllm:num_requests_waiting'),
    prefixQueries: total(samples, 'vllm:prefix_cache_queries_total'),
    prefixHits: total(samples, 'vllm:prefix_cache_hits_total'),
    preemptions: total(samples, 'vllm:num_preemptions_total'),
    lateness: {
      buckets,
      sum: total(samples, 'aya_sim_step_lateness_seconds_sum'),
      count: total(samples, 'aya_sim_step_lateness_seconds_count'),
    },
    latenessMaxMs: total(samples, 'aya_sim_step_lateness_max_seconds') * 1000,
  }
}

export async function scrapeEngine(url: string, dispatcher?: Dispatcher): Promise<EngineCounters> {
  const res = await request(`${url}/metrics`, dispatcher ? { dispatcher } : {})
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url}/metrics answered ${res.statusCode}`)
  return parseEngineCounters(text)
}

/** Step lateness over a run (after − before), in engine milliseconds. */
export interface LatenessStats {
  readonly steps: number
  readonly meanMs: number
  /** Upper bound of the histogram bucket holding the 99th percentile, at most `maxMs`. */
  readonly p99Ms: number
  /**
   * The latest step of the run. The engine's gauge holds its maximum since it started (start-up
   * and warm-up included), so it is the run's exactly when the run raised it; otherwise the run's
   * is at most the gauge and at most the bound of the highest bucket the run's steps reached.
   */
  readonly maxMs: number
}

export function latenessBetween(before: EngineCounters, after: EngineCounters): LatenessStats {
  const count = after.lateness.count - before.lateness.count
  const sum = after.lateness.sum - before.lateness.sum
  if (count <= 0) return { steps: count, meanMs: 0, p99Ms: 0, maxMs: 0 }
  const bounds = [...after.lateness.buckets.keys()].sort((a, b) => a - b)
  const inRun = (le: number) =>
    after.lateness.buckets.get(le)! - (before.lateness.buckets.get(le) ?? 0)
  // The smallest bound every step of the run is within (cumulative buckets).
  const highestMs = (bounds.find((le) => inRun(le) >= count) ?? Number.POSITIVE_INFINITY) * 1000
  const maxMs =
    after.latenessMaxMs > before.latenessMaxMs
      ? after.latenessMaxMs
      : Math.min(after.latenessMaxMs, highestMs)
  const p99Le = bounds.find((le) => inRun(le) >= 0.99 * count) ?? Number.POSITIVE_INFINITY
  return {
    steps: count,
    meanMs: (sum / count) * 1000,
    p99Ms: Math.min(p99Le * 1000, maxMs),
    maxMs,
  }
}
