import { UsageError } from './bench-options.ts'

/** Load samples one run keeps for the charts: far more than a chart has pixels. */
export const MAX_LOAD_SAMPLES = 100_000

/** Engine-metrics snapshots one virtual-time run takes: some seconds of work per run. */
export const MAX_DES_SCRAPES = 10_000_000

export interface ReplayTicksInput {
  /** Trace ms from the first to the last arrival at the slowest rate scale the bench runs. */
  readonly spanMs: number
  readonly sampleIntervalMs: number
  readonly scrapeIntervalMs: number
  /** Whether a virtual-time run scrapes on its own clock (HTTP runs scrape in real time). */
  readonly isDes: boolean
}

/**
 * Refuses a replay whose periodic timers would tick without end before any run starts. A load
 * sample and a virtual-time scrape fire every interval from the first arrival to the last, so a
 * tiny interval, or one outlying timestamp (epoch milliseconds among relative ones), otherwise
 * filled the memory with samples or ran scrapes for ever.
 */
export function checkReplayTicks(input: ReplayTicksInput): void {
  const spanS = +(input.spanMs / 1000).toFixed(3)
  const samples = input.spanMs / input.sampleIntervalMs
  if (samples > MAX_LOAD_SAMPLES) {
    throw new UsageError(
      `--sample-interval-ms ${input.sampleIntervalMs} over the replay's ${spanS} s of arrivals would take ${Math.ceil(samples)} load samples (at most ${MAX_LOAD_SAMPLES}): raise --sample-interval-ms to ${Math.ceil(input.spanMs / MAX_LOAD_SAMPLES)} or more, or narrow --window`,
    )
  }
  const scrapes = input.spanMs / input.scrapeIntervalMs
  if (input.isDes && scrapes > MAX_DES_SCRAPES) {
    throw new UsageError(
      `--scrape-interval-ms ${input.scrapeIntervalMs} over the replay's ${spanS} s of arrivals would take ${Math.ceil(scrapes)} engine scrapes (at most ${MAX_DES_SCRAPES}): raise --scrape-interval-ms to ${Math.ceil(input.spanMs / MAX_DES_SCRAPES)} or more, or narrow --window`,
    )
  }
}
