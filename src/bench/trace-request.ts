/** The trace file formats `aya bench` reads (see `../shared/traces/README.md`). */
export type TraceFormat = 'mooncake' | 'azure' | 'sharegpt'

/** How arrival times were produced; recorded in `meta.timing`. */
export type TraceTiming = 'as-recorded' | 'spread-buckets' | 'poisson'

/** One row as the file holds it, before any timing or length transform. */
export interface TraceRow {
  /** Arrival in the file's own milliseconds; undefined for ShareGPT (no timestamps). */
  readonly timestampMs: number | undefined
  readonly inputTokens: number
  readonly outputTokens: number
  /** Mooncake prefix-block ids, one per 512-token block of the prompt. */
  readonly hashIds?: readonly number[] | undefined
}

/** One request to replay, in trace time after every transform. */
export interface TraceRequest {
  /** The row's position in the file: seeds the text of prompts without prefix information. */
  readonly id: number
  /** Send time, ms after the replay starts. */
  readonly atMs: number
  readonly inputTokens: number
  /** The true output length: sent only to the simulator, never in `max_tokens`. */
  readonly outputTokens: number
  readonly hashIds?: readonly number[] | undefined
  /** A conversation key, where the trace implies one (Mooncake: see `trace-loader.ts`). */
  readonly sessionId?: string | undefined
}
