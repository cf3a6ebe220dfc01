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
