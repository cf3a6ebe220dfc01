import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  buildTrace,
  loadTrace,
  roundCap,
  TraceOptionsError,
} from '../../../src/bench/trace-loader.ts'
import type { TraceRow } from '../../../src/bench/trace-request.ts'
import { parseWindow, poissonArrivalsMs, spreadBuckets } from '../../../src/bench/trace-timing.ts'
import { createSeededRandom } from '../../../src/util/random.ts'
import { TRACE_FILES, tracePath } from './shared-traces.ts'

const row = (
  timestampMs: number,
  inputTokens = 100,
  outputTokens = 10,
  hashIds?: number[],
): TraceRow => ({
  timestampMs,
  inputTokens,
  outputTokens,
  hashIds,
})
const BIG = { maxModelLen: 131_072 }

describe('trace timing', () => {
  it('parses windows', () => {
    assert.deepEqual(parseWindow('60:660'), { startS: 60, endS: 660 })
    assert.deepEqual(parseWindow('0.5:1.5'), { startS: 0.5, endS: 1.5 })
    assert.equal(parseWindow('10:5'), undefined)
    assert.equal(parseWindow('10'), undefined)
  })

  it('spreads each run of equal timestamps over the gap to the next', () => {
    assert.deepEqual(spreadBuckets([0, 0, 0, 3000, 6000, 6000]), [0, 1000, 2000, 3000, 6000, 7500])
    assert.deepEqual(spreadBuckets([5, 5]), [5, 5])
  })

  it('draws seeded Poisson arrivals at the asked rate', () => {
    const times = poissonArrivalsMs(20_000, 4, createSeededRandom(9))
    assert.equal(times[0], 0)
    const rate = (times.length - 1) / (times.at(-1)! / 1000)
    assert.ok(Math.abs(rate - 4) < 0.15, `rate ${rate}`)
    assert.deepEqual(poissonArrivalsMs(5, 4, createSeededRandom(9)), times.slice(0, 5))
  })
})

describe('trace loading', () => {
  const rows = [row(1000), row(1000), row(4000), row(7000), row(10_000)]

  it('rebases to the first request and records the original start', () => {
    const trace = buildTrace('t', 'azure', rows, BIG)
    assert.deepEqual(
      trace.requests.map((r) => r.atMs),
      [0, 0, 3000, 6000, 9000],
    )
    assert.deepEqual(trace.rebase, { traceStartMs: 1000, firstKeptMs: 1000 })
    assert.equal(trace.timing, 'as-recorded')
  })

  it('keeps the window measured from the first request, rebased to the first kept one', () => {
    const trace = buildTrace('t', 'azure', rows, { ...BIG, window: { startS: 2, endS: 8 } })
    assert.deepEqual(
      trace.requests.map((r) => [r.id, r.atMs]),
      [
        [2, 0],
        [3, 3000],
      ],
    )
    assert.equal(trace.rebase.firstKeptMs, 4000)
    assert.throws(
      () => buildTrace('t', 'azure', rows, { ...BIG, window: { startS: 50, endS: 60 } }),
      TraceOptionsError,
    )
  })

  it('names the window and how long the trace runs when a window is past its end', () => {
    // A window between two requests is as empty as one past the last.
    for (const [startS, endS] of [
      [50, 60],
      [3.5, 5.5],
    ] as const) {
      assert.throws(
        () => buildTrace('t', 'azure', rows, { ...BIG, window: { startS, endS } }),
        (error: Error) =>
          error instanceof TraceOptionsError &&
          error.message ===
            `no requests of t fall in --window ${startS}:${endS}: its requests arrive from 0 to 9 s`,
      )
    }
  })

  it('divides every gap by the rate scale', () => {
    const trace = buildTrace('t', 'azure', rows, { ...BIG, rateScale: 2 })
    assert.deepEqual(
      trace.requests.map((r) => r.atMs),
      [0, 0, 1500, 3000, 4500],
    )
  })

  it('spreads buckets before windowing when asked', () => {
    const trace = buildTrace('t', 'mooncake', rows, { ...BIG, spreadBuckets: true })
    assert.deepEqual(
      trace.requests.map((r) => r.atMs),
      [0, 1500, 3000, 6000, 9000],
    )
    assert.equal(trace.timing, 'spread-buckets')
  })

  it('scales lengths and the Mooncake block size, and caps max_tokens per trace', () => {
    const trace = buildTrace('t', 'mooncake', [row(0, 1000, 900, [1, 2]), row(1, 3, 1, [1])], {
      ...BIG,
      lengthScale: 0.25,
    })
    assert.deepEqual(
      trace.requests.map((r) => [r.inputTokens, r.outputTokens]),
      [
        [250, 225],
        [1, 1],
      ],
    )
    assert.equal(trace.blockTokens, 128)
    assert.equal(trace.maxTokens, 256)
    assert.equal(roundCap(1), 16)
    assert.equal(roundCap(1000), 1024)
  })

  it('clips prompts that would overflow the context window with max_tokens', () => {
    const trace = buildTrace('t', 'azure', [row(0, 5000, 100), row(1, 100, 100)], {
      maxModelLen: 4096,
    })
    assert.equal(trace.maxTokens, 128)
    assert.deepEqual(trace.clipping, { maxInputTokens: 3968, clippedRequests: 1 })
    assert.equal(trace.requests[0]!.inputTokens, 3968)
  })

  it('names the flag whose max_tokens leaves no room for a prompt', () => {
    const rows = [row(0, 100, 3000), row(1, 100, 100)]
    assert.throws(
      () => buildTrace('t', 'azure', rows, { maxModelLen: 4096, maxTokens: 4096 }),
      /^Error: --max-tokens 4096 leaves no room for a prompt in the 4096-token context window$/,
    )
    assert.throws(
      () => buildTrace('t', 'azure', rows, { maxModelLen: 4096, lengthScale: 2 }),
      /^Error: max_tokens 8192 \(the trace's longest output at --length-scale 2, rounded up\) leaves no room/,
    )
  })

  it('derives Mooncake sessions from the first id after the ids every row shares', () => {
    const trace = buildTrace(
      't',
      'mooncake',
      [row(0, 1200, 1, [0, 7, 8]), row(1, 600, 1, [0, 9]), row(2, 2000, 1, [0, 7, 8, 10])],
      BIG,
    )
    assert.deepEqual(
      trace.requests.map((r) => r.sessionId),
      ['s7', 's9', 's7'],
    )
  })

  it('needs --rate for ShareGPT, then replays Poisson arrivals', async () => {
    await assert.rejects(loadTrace(tracePath(TRACE_FILES.sharegpt), BIG), /--rate/)
    const trace = await loadTrace(tracePath(TRACE_FILES.sharegpt), {
      ...BIG,
      ratePerSecond: 10,
      limit: 100,
    })
    assert.equal(trace.timing, 'poisson')
    assert.equal(trace.requests.length, 100)
    assert.equal(trace.maxTokens, 1024)
  })

  it('loads a 10-minute window of the Mooncake conversation trace', async () => {
    const trace = await loadTrace(tracePath(TRACE_FILES.mooncakeConversation), {
      ...BIG,
      window: { startS: 0, endS: 600 },
    })
    assert.ok(trace.requests.length > 1500 && trace.requests.length < 2500)
    assert.ok(trace.requests.every((r) => r.atMs < 600_000))
    assert.equal(trace.maxTokens, 2048)
    assert.equal(trace.blockTokens, 512)
  })
})
