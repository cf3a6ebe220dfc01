import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { EngineStats } from './engine.ts'

/** Buckets of the simulator's own step-lateness histogram, in engine seconds. */
const LATENESS_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]

/**
 * How a simulated engine's `/metrics` declares its series, whatever names its dialect uses:
 * gauges and counters read the engine's stats at scrape time, histograms are fed as it runs.
 * Every series carries the dialect's labels.
 */
export interface MetricFamilies {
  gauge(name: string, help: string, read: (s: EngineStats) => number): void
  /** A counter mirrored from a running total: each scrape adds what grew since the last. */
  counter(name: string, help: string, read: (s: EngineStats) => number): void
  /** Bound to the label values once: `observe` then skips hashing labels on every token. */
  histogram(name: string, help: string, buckets: number[]): Histogram.Internal<string>
  /** Feeds the simulator's own `aya_sim_step_lateness_seconds` and its running maximum. */
  stepLateness(latenessMs: number): void
}

export function createMetricFamilies(
  labels: Readonly<Record<string, string>>,
  registry: Registry,
  stats: () => EngineStats,
): MetricFamilies {
  const labelNames = Object.keys(labels)
  const registers = [registry]
  const histogram = (name: string, help: string, buckets: number[]) =>
    new Histogram({ name, help, labelNames, registers, buckets }).labels(labels)
  const lateness = histogram(
    'aya_sim_step_lateness_seconds',
    'How late each simulated step ended against its absolute deadline, in engine seconds.',
    LATENESS_BUCKETS_S,
  )
  let latenessMaxMs = 0
  new Gauge({
    name: 'aya_sim_step_lateness_max_seconds',
    help: 'The latest any simulated step ended against its deadline so far, in engine seconds.',
    labelNames,
    registers,
    collect() {
      this.set(labels, latenessMaxMs / 1000)
    },
  })
  return {
    gauge(name, help, read) {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.set(labels, read(stats()))
        },
      })
    },
    counter(name, help, read) {
      let exported = 0
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const value = read(stats())
          this.inc(labels, Math.max(0, value - exported))
          exported = Math.max(exported, value)
        },
      })
    },
    histogram,
    stepLateness(latenessMs) {
      lateness.observe(latenessMs / 1000)
      latenessMaxMs = Math.max(latenessMaxMs, latenessMs)
    },
  }
}
