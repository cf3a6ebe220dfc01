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
  const { spanMs } = input
  const check = (flag: string, intervalMs: number, what: string, max: number) => {
    const ticks = spanMs / intervalMs
    if (ticks <= max) return
    throw new UsageError(
      `${flag} ${intervalMs} over the replay's ${+(spanMs / 1000).toFixed(3)} s of arrivals would take ${Math.ceil(ticks)} ${what} (at most ${max}): raise ${flag} to ${Math.ceil(spanMs / max)} or more, or narrow --window`,
    )
  }
  check('--sample-interval-ms', input.sampleIntervalMs, 'load samples', MAX_LOAD_SAMPLES)
  if (input.isDes) {
    check('--scrape-interval-ms', input.scrapeIntervalMs, 'engine scrapes', MAX_DES_SCRAPES)
  }
}
