import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { createSeededRandom } from '../util/random.ts'
import { detectTraceFormat, parseTraceRows, TraceParseError } from './trace-parse.ts'
import type { TraceFormat, TraceRequest, TraceRow, TraceTiming } from './trace-request.ts'
import {
  poissonArrivalsMs,
  spreadBuckets,
  type TraceWindow,
  windowIndices,
} from './trace-timing.ts'

/** Mooncake's prefix-block size in the trace's own tokens. */
export const MOONCAKE_BLOCK_TOKENS = 512

export interface TraceOptions {
  readonly window?: TraceWindow | undefined
  /** Multiplies the arrival rate: every gap is divided by it. Default 1. */
  readonly rateScale?: number | undefined
  /** Poisson arrivals at this many requests per second; required for ShareGPT, ignored otherwise. */
  readonly ratePerSecond?: number | undefined
  /** Scales input and output lengths and the Mooncake block size. Default 1. */
  readonly lengthScale?: number | undefined
  readonly spreadBuckets?: boolean | undefined
  readonly seed?: number | undefined
  /** The fleet's context window: prompts longer than it minus `max_tokens` are clipped. */
  readonly maxModelLen: number
  /** Overrides the per-trace `max_tokens` cap. */
  readonly maxTokens?: number | undefined
  /** Keeps only the first N requests after the window. */
  readonly limit?: number | undefined
}

export interface LoadedTrace {
  readonly name: string
  readonly format: TraceFormat
  readonly timing: TraceTiming
  readonly requests: readonly TraceRequest[]
  /** Rows in the file. */
  readonly rows: number
  /** Words per Mooncake hash id after length scaling (512 × F); undefined for other formats. */
  readonly blockTokens: number | undefined
  /** The `max_tokens` cap sent with every request of the trace. */
  readonly maxTokens: number
  /** File time of the trace's first request, and of the first request kept (ms). */
  readonly rebase: { readonly traceStartMs: number; readonly firstKeptMs: number }
  readonly clipping: { readonly maxInputTokens: number; readonly clippedRequests: number }
}

export class TraceOptionsError extends Error {}

/** The smallest power of two ≥ n, at least 16: a `max_tokens` a client might plausibly send. */
export function roundCap(n: number): number {
  let cap = 16
  while (cap < n) cap *= 2
  return cap
}

/**
 * The conversation of a Mooncake row: the first hash id after the ids every row starts with
 * (conversation traces all begin with one universal block). Multi-turn requests extend the ids of
 * their earlier turns, so this id is shared by the turns of one conversation.
 */
function mooncakeSessions(rows: readonly TraceRow[]): (string | undefined)[] {
  let common = Number.POSITIVE_INFINITY
  const first = rows[0]?.hashIds ?? []
  for (const row of rows) {
    const ids = row.hashIds ?? []
    let k = 0
    while (k < Math.min(common, ids.length, first.length) && ids[k] === first[k]) k++
    common = k
  }
  if (!Number.isFinite(common)) common = 0
  return rows.map((row) => {
    const ids = row.hashIds ?? []
    if (ids.length === 0) return undefined
    return `s${ids[Math.min(common, ids.length - 1)]}`
  })
}

function scaleLength(tokens: number, factor: number): number {
  return Math.max(1, Math.round(tokens * factor))
}

/** Applies timing, window, length and rate transforms to parsed rows. */
export function buildTrace(
  name: string,
  format: TraceFormat,
  rows: readonly TraceRow[],
  options: TraceOptions,
): LoadedTrace {
  const lengthScale = options.lengthScale ?? 1
  const rateScale = options.rateScale ?? 1
  if (rows.length === 0) throw new TraceOptionsError(`${name} has no requests`)
  let timing: TraceTiming = options.spreadBuckets ? 'spread-buckets' : 'as-recorded'
  let times: number[]
  if (format === 'sharegpt') {
    if (options.ratePerSecond === undefined) {
      throw new TraceOptionsError('ShareGPT lengths have no timestamps: give --rate Q')
    }
    const random = createSeededRandom(((options.seed ?? 1) ^ 0x5a17) >>> 0)
    times = poissonArrivalsMs(rows.length, options.ratePerSecond, random)
    timing = 'poisson'
  } else {
    times = rows.map((r) => r.timestampMs ?? 0)
  }
  // Rows are replayed in time order; a stable sort keeps file order within equal timestamps.
  const order = rows.map((_, i) => i).sort((a, b) => times[a]! - times[b]! || a - b)
  const sortedTimes = order.map((i) => times[i]!)
  const traceStartMs = sortedTimes[0]!
  const arrivalTimes = timing === 'spread-buckets' ? spreadBuckets(sortedTimes) : sortedTimes
  let kept = windowIndices(arrivalTimes, traceStartMs, options.window)
  if (options.limit !== undefined) kept = kept.slice(0, options.limit)
  if (kept.length === 0) {
    const spanS = (arrivalTimes.at(-1)! - traceStartMs) / 1000
    throw new TraceOptionsError(
      `no requests of ${name} fall in --window ${options.window?.startS}:${options.window?.endS}: its requests arrive from 0 to ${+spanS.toFixed(3)} s`,
    )
  }

  const sessions = format === 'mooncake' ? mooncakeSessions(rows) : []
  const outputs = rows.map((r) => scaleLength(r.outputTokens, lengthScale))
  const maxTokens = options.maxTokens ?? roundCap(outputs.reduce((a, b) => Math.max(a, b), 0))
  const maxInputTokens = options.maxModelLen - maxTokens
  if (maxInputTokens < 1) {
    const cap =
      options.maxTokens === undefined
        ? `max_tokens ${maxTokens} (the trace's longest output at --length-scale ${lengthScale}, rounded up)`
        : `--max-tokens ${maxTokens}`
    throw new TraceOptionsError(
      `${cap} leaves no room for a prompt in the ${options.maxModelLen}-token context window`,
    )
  }
  const firstKeptMs = arrivalTimes[kept[0]!]!
  let clippedRequests = 0
  const requests = kept.map((k): TraceRequest => {
    const id = order[k]!
    const row = rows[id]!
    let inputTokens = scaleLength(row.inputTokens, lengthScale)
    if (inputTokens > maxInputTokens) {
      inputTokens = maxInputTokens
      clippedRequests++
    }
    return {
      id,
      atMs: (arrivalTimes[k]! - firstKeptMs) / rateScale,
      inputTokens,
      outputTokens: outputs[id]!,
      hashIds: row.hashIds,
      sessionId: sessions[id],
    }
  })
  return {
    name,
    format,
    timing,
    requests,
    rows: rows.length,
    blockTokens:
      format === 'mooncake'
        ? Math.max(1, Math.round(MOONCAKE_BLOCK_TOKENS * lengthScale))
        : undefined,
    maxTokens,
    rebase: { traceStartMs, firstKeptMs },
    clipping: { maxInputTokens, clippedRequests },
  }
}

export async function loadTrace(path: string, options: TraceOptions): Promise<LoadedTrace> {
  const text = await readFile(path, 'utf8')
  const format = detectTraceFormat(text)
  if (!format) {
    throw new TraceParseError(
      `${path}: not a Mooncake JSONL, Azure LLM CSV or ShareGPT lengths CSV trace`,
    )
  }
  return buildTrace(basename(path), format, parseTraceRows(format, text, path), options)
}
