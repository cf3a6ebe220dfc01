import type { LoadedTrace } from '../../src/bench/trace-loader.ts'
import type { TraceRequest } from '../../src/bench/trace-request.ts'

/** A hand-made trace for virtual-time runs. */
export function syntheticTrace(
  name: string,
  requests: TraceRequest[],
  maxTokens: number,
): LoadedTrace {
  return {
    name,
    format: 'sharegpt',
    timing: 'poisson',
    requests,
    rows: requests.length,
    blockTokens: undefined,
    maxTokens,
    rebase: { traceStartMs: 0, firstKeptMs: 0 },
    clipping: { maxInputTokens: 131_000, clippedRequests: 0 },
  }
}

/** The bench's defaults for a virtual-time run (seed 1, 50-ms scrapes, 300-s client timeout). */
export const DES_RUN_DEFAULTS = {
  seed: 1,
  scrapeIntervalMs: 50,
  sampleIntervalMs: 1000,
  timeoutMs: 300_000,
  speedup: 1,
  sloTtftMs: 2000,
} as const
