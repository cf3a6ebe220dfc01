/**
 * What an inference engine last said about itself on `/metrics` (vLLM or SGLang names), with when
 * it was read. Router-side accounting is the primary load signal; this is the closed-loop check.
 */
export interface EngineSnapshot {
  /** Clock time the scrape completed, ms. */
  readonly atMs: number
  readonly running: number
  readonly waiting: number
  /** KV-cache usage as a fraction 0–1. */
  readonly kvUsage: number
  /** Cumulative prefix-cache lookups and hits, in tokens. */
  readonly prefixQueriesTotal: number
  readonly prefixHitsTotal: number
  readonly preemptionsTotal: number
  /** From `vllm:cache_config_info`, when the engine publishes it. */
  readonly blockSize: number | undefined
  readonly numGpuBlocks: number | undefined
}

/** Policies read engine metrics through this; stale data comes back as undefined, never as idle. */
export interface EngineMetricsSource {
  get(endpointId: string): EngineSnapshot | undefined
}

export const NO_ENGINE_METRICS: EngineMetricsSource = { get: () => undefined }
