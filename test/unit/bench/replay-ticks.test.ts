import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { UsageError } from '../../../src/bench/bench-options.ts'
import {
  checkReplayTicks,
  MAX_DES_SCRAPES,
  MAX_LOAD_SAMPLES,
} from '../../../src/bench/replay-ticks.ts'

const defaults = { sampleIntervalMs: 1000, scrapeIntervalMs: 50, isDes: true }

describe('replay ticks', () => {
  it('takes a replay up to the limits and refuses one past them, saying what interval would do', () => {
    checkReplayTicks({ ...defaults, spanMs: MAX_LOAD_SAMPLES * 1000 })
    assert.throws(
      () => checkReplayTicks({ ...defaults, spanMs: MAX_LOAD_SAMPLES * 1000 + 1 }),
      (error: Error) =>
        error instanceof UsageError &&
        /would take 100001 load samples \(at most 100000\): raise --sample-interval-ms to 1001 or more/.test(
          error.message,
        ),
    )
    const scrapeSpanMs = MAX_DES_SCRAPES * 0.001
    checkReplayTicks({ ...defaults, spanMs: scrapeSpanMs, scrapeIntervalMs: 0.001 })
    assert.throws(
      () => checkReplayTicks({ ...defaults, spanMs: scrapeSpanMs, scrapeIntervalMs: 0.0009 }),
      /--scrape-interval-ms 0\.0009 over the replay's 10 s of arrivals/,
    )
  })

  it('leaves scraping to real time in HTTP mode', () => {
    checkReplayTicks({ ...defaults, spanMs: 10_000, scrapeIntervalMs: 1e-9, isDes: false })
  })
})
