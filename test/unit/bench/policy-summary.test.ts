import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createNumberPool, percentile, sortedNumbers } from '../../../src/bench/percentiles.ts'
import {
  engineSummary,
  POLICY_RESULT_KEYS,
  summarizeRun,
} from '../../../src/bench/policy-summary.ts'
import { createRunRecord, type RequestOutcome } from '../../../src/bench/run-record.ts'

const ok = (
  sendMs: number,
  ttftMs: number,
  endMs: number,
  chunks = 3,
  itlSumMs = 20,
): RequestOutcome => ({
  sendMs,
  ok: true,
  status: 200,
  firstContentMs: sendMs + ttftMs,
  endMs,
  contentChunks: chunks,
  itlSumMs,
  completionTokens: chunks,
})
const failed = (sendMs: number, endMs: number): RequestOutcome => ({
  sendMs,
  ok: false,
  status: 503,
  error: 'HTTP 503',
  endMs,
  contentChunks: 0,
  itlSumMs: 0,
})

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const sorted = sortedNumbers([5, 1, 4, 2, 3])
    assert.equal(percentile(sorted, 0.5), 3)
    assert.equal(percentile(sorted, 0.9), 5)
    assert.equal(percentile(sorted, 0.2), 1)
    assert.equal(percentile(sorted, 1), 5)
    assert.ok(Number.isNaN(percentile(sortedNumbers([]), 0.5)))
  })

  it('lets failures as infinity take over the high percentiles once they are more than 1 − q', () => {
    const values = [...Array.from({ length: 95 }, (_, i) => i + 1), ...Array(5).fill(Infinity)]
    const sorted = sortedNumbers(values)
    assert.equal(percentile(sorted, 0.9), 90)
    assert.equal(percentile(sorted, 0.95), 95)
    assert.equal(percentile(sorted, 0.99), Infinity)
  })

  it('pools numbers in a growable array', () => {
    const pool = createNumberPool(2)
    for (const v of [3, 1, 2, 5, 4]) pool.push(v)
    assert.equal(pool.length, 5)
    assert.deepEqual([...pool.sorted()], [1, 2, 3, 4, 5])
  })
})

describe('run summary', () => {
  it('counts failures as infinite TTFT and e2e, and rates per trace second', () => {
    const record = createRunRecord()
    record.outcomes.push(
      ok(0, 100, 1000),
      ok(0, 200, 1500, 5, 400),
      failed(500, 2000),
      ok(1000, 300, 3000),
    )
    for (const gap of [10, 10, 20, 100, 100, 100, 100]) record.itlGapsMs.push(gap)
    const r = summarizeRun(record, { ttftMs: 250, itlMs: 25 })
    assert.equal(r.completed, 3)
    assert.equal(r.failed, 1)
    assert.equal(r.ttftP50Ms, 200)
    assert.equal(r.ttftP90Ms, Infinity)
    assert.equal(r.e2eP50Ms, 1500)
    assert.equal(r.e2eP99Ms, Infinity)
    assert.equal(r.itlP50Ms, 100)
    // 3 s from the first send to the last end.
    assert.equal(r.requestsPerSec, 1)
    assert.equal(r.outputTokensPerSec, (3 + 5 + 3) / 3)
    // Only the first meets TTFT ≤ 250 and mean ITL ≤ 25 (the second's mean ITL is 100), over
    // the 1 s of offered load from the first send to the last.
    assert.equal(r.goodRequests, 1)
    assert.equal(r.goodputPerSec, 1)
    assert.equal(r.promptHitRate, null, 'no engine reported cached tokens')
    assert.deepEqual(Object.keys(r).sort(), [...POLICY_RESULT_KEYS].sort())
  })

  it('divides goodput by the offered load, so failing a long request early cannot raise it', () => {
    const run = (last: RequestOutcome) => {
      const record = createRunRecord()
      for (let i = 0; i < 100; i++) record.outcomes.push(ok(i * 100, 50, i * 100 + 80))
      record.outcomes.push(last)
      return summarizeRun(record, { ttftMs: 2000, itlMs: 25 })
    }
    const served = run(ok(9900, 1500, 60_000))
    const refused = run(failed(9900, 9901))
    assert.equal(served.goodRequests, 101)
    assert.equal(refused.goodRequests, 100)
    assert.ok(served.goodputPerSec > refused.goodputPerSec)
  })

  it('reads the prompt hit rate from what each engine held at first scheduling, each prompt once', () => {
    const record = createRunRecord()
    record.outcomes.push(
      { ...ok(0, 100, 1000), promptTokens: 1000, cachedPromptTokens: 600 },
      { ...ok(0, 100, 1000), promptTokens: 1000, cachedPromptTokens: 0 },
    )
    assert.equal(summarizeRun(record, { ttftMs: 250, itlMs: 25 }).promptHitRate, 0.3)
  })

  it('reads hit rate, imbalance and each replica’s prefill share from per-replica engine deltas', () => {
    const summary = engineSummary({
      replicas: [
        { id: 'a', prefixQueries: 1000, prefixHits: 500, preemptions: 0 },
        { id: 'b', prefixQueries: 300, prefixHits: 0, preemptions: 0 },
        { id: 'c', prefixQueries: 200, prefixHits: 100, preemptions: 0 },
      ],
    })
    assert.equal(summary.prefixHitRate, 600 / 1500)
    // Uncached prefill 500, 300, 100: max 500 over mean 300.
    assert.equal(summary.imbalance, 500 / 300)
    assert.deepEqual(summary.replicaPrefillShare, [500 / 900, 300 / 900, 100 / 900])
    assert.deepEqual(engineSummary({ replicas: [] }), {
      prefixHitRate: null,
      imbalance: null,
      replicaPrefillShare: null,
    })
  })
})
