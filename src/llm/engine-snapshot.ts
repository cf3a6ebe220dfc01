/**
 * What an inference engine last said about itself on `/metrics` (vLLM or SGLang names), with when
 * it was read. Router-side accounting is the primary load signal; this is the closed-loop check.
 * Every number is finite: a reading whose load is `NaN` or infinite is no snapshot (unknown).
 *
 * A load gauge the page does not publish is undefined, unknown for that quantity alone, as a stale
 * reading is for all of them: read as 0, a page without its queue gauge scored as the emptiest
 * engine of the fleet and drew the traffic.
 */
export interface EngineSnapshot {
  /** Clock time the scrape was sent, ms: what it says is from no earlier. */
  readonly atMs: number
  readonly running: number | undefined
  readonly waiting: number | undefined
  /** KV-cache usage as a fraction 0–1. */
  readonly kvUsage: number | undefined
  /**
   * Cumulative prefix-cache lookups and hits, in tokens, and preemptions; undefined when the page
   * leaves the counter out or its samples sum past the largest number.
   */
  readonly prefixQueriesTotal: number | undefined
  readonly prefixHitsTotal: number | undefined
  readonly preemptionsTotal: number | undefined
  /**
   * The KV pool's layout when the engine publishes it: vLLM's `cache_config_info` (`block_size`,
   * `num_gpu_blocks`), or SGLang's page size and page count (`sglang:page_size`/`num_pages`, the
   * same as `cache_config_info` labels, or `max_total_num_tokens` in pages of 1 token).
   */
  readonly blockSize: number | undefined
  readonly numGpuBlocks: number | undefined
}

/**
 * An engine's KV-cache layout, from `vllm:cache_config_info` or SGLang's equivalents: the pool
 * holds `numGpuBlocks × blockSize` tokens.
 */
export interface KvLayout {
  /** Tokens per block (vLLM `block_size`, SGLang `page_size`). */
  readonly blockSize: number
  readonly numGpuBlocks: number
}

/** Policies read engine metrics through this; stale data comes back as undefined, never as idle. */
export interface EngineMetricsSource {
  get(endpointId: string): EngineSnapshot | undefined
  /**
   * The KV layout the engine last published. It is configuration, not load, so it does not go
   * stale: a missed scrape must not shrink what the router believes the engine can cache.
   */
  kvLayout(endpointId: string): KvLayout | undefined
}

export const NO_ENGINE_METRICS: EngineMetricsSource = {
  get: () => undefined,
  kvLayout: () => undefined,
}

/** The tokens a KV pool of this layout holds. */
export function kvCapacityTokensOf(layout: KvLayout): number {
  return layout.numGpuBlocks * layout.blockSize
}

/**
 * More KV than any server holds: a trillion tokens is some 10^5 GPUs' pools. A page claiming more
 * is broken, and its pool taken at its word would switch the KV headroom check off for good.
 */
const MAX_KV_CAPACITY_TOKENS = 2 ** 40

/**
 * The layout a snapshot carries, when it carries a plausible one: whole, positive numbers of
 * blocks and tokens a block, the pool within `MAX_KV_CAPACITY_TOKENS`. An infinite pool left every
 * request room there and, sized in blocks past `Number.MAX_SAFE_INTEGER`, had every other router
 * replica drop this one's prefix announcements for it; a fraction of a token kept one request at
 * a time there. Anything else is no layout, so the last plausible one (or the default) stands.
 */
export function kvLayoutOf(snapshot: EngineSnapshot): KvLayout | undefined {
  const { blockSize, numGpuBlocks } = snapshot
  if (!isCount(blockSize) || !isCount(numGpuBlocks)) return undefined
  return blockSize * numGpuBlocks <= MAX_KV_CAPACITY_TOKENS
    ? { blockSize, numGpuBlocks }
    : undefined
}

const isCount = (n: number | undefined): n is number =>
  n !== undefined && Number.isSafeInteger(n) && n > 0
