import { Registry } from 'prom-client'
import type { EngineObserver, EngineStats } from './engine.ts'
import {
  type EngineMetrics,
  type EngineMetricsOptions,
  ITL_BUCKETS_S,
  REQUEST_LATENCY_BUCKETS_S,
  TTFT_BUCKETS_S,
} from './engine-metrics.ts'
import { createMetricFamilies } from './metric-families.ts'

/**
 * The names a simulated engine's `/metrics` speaks: vLLM's (the default), or SGLang's, so a test
 * can check what a router reads from an SGLang fleet without one.
 */
export type MetricsDialect = 'vllm' | 'sglang'

/**
 * The same engine's `/metrics` under SGLang's names (`python/sglang/srt/metrics/collector.py`), in
 * a private registry, labelled with `model_name` only as a single-rank SGLang server writes them:
 *
 * - `sglang:num_running_reqs`, `sglang:num_queue_reqs`, `sglang:token_usage` (0–1) and
 *   `sglang:num_used_tokens`, read from the engine's stats at scrape time;
 * - `sglang:max_total_num_tokens`, the KV pool in tokens (the usable blocks, vLLM's null block
 *   left out), which is how every SGLang version with metrics publishes its size;
 * - `sglang:cache_hit_rate`: SGLang sets it from the last prefill batch it logs and to 0 when it
 *   logs a decode batch, so it is a sample rather than a rate. Here it is the hit rate of the
 *   prompts admitted since the previous scrape, 0 when none were;
 * - counters `sglang:prompt_tokens_total` and `sglang:cached_tokens_total` (SGLang counts both as
 *   each request finishes; here, as the prefix-cache stats are, when a request is admitted),
 *   `sglang:generation_tokens_total` and `sglang:num_retracted_requests_total` (preemptions);
 * - histograms `sglang:time_to_first_token_seconds`, `sglang:inter_token_latency_seconds` and
 *   `sglang:e2e_request_latency_seconds`, with vLLM's buckets, in engine seconds;
 * - the simulator's own `aya_sim_*` series, as in the vLLM dialect.
 */
export function createSglangEngineMetrics(
  options: EngineMetricsOptions,
  stats: () => EngineStats,
): EngineMetrics {
  const registry = new Registry()
  const labels = { model_name: options.modelName }
  const { profile } = options
  const usableBlocks = profile.numGpuBlocks - 1
  const { gauge, counter, histogram, stepLateness } = createMetricFamilies(labels, registry, stats)

  gauge('sglang:num_running_reqs', 'The number of running requests.', (s) => s.running)
  gauge(
    'sglang:num_used_tokens',
    'The number of used tokens.',
    (s) => (usableBlocks - s.numFreeBlocks) * profile.blockSizeTokens,
  )
  gauge('sglang:token_usage', 'The token usage.', (s) => s.kvCacheUsage)
  gauge('sglang:num_queue_reqs', 'The number of requests in the waiting queue.', (s) => s.waiting)

  let hitRateFrom = { queries: 0, hits: 0 }
  gauge('sglang:cache_hit_rate', 'The prefix cache hit rate.', (s) => {
    const queries = s.prefixCacheQueries - hitRateFrom.queries
    const hits = s.prefixCacheHits - hitRateFrom.hits
    hitRateFrom = { queries: s.prefixCacheQueries, hits: s.prefixCacheHits }
    return queries > 0 ? hits / queries : 0
  })
  gauge(
    'sglang:max_total_num_tokens',
    'Maximum total number of tokens in the KV cache pool.',
    () => usableBlocks * profile.blockSizeTokens,
  )

  counter(
    'sglang:prompt_tokens_total',
    'Number of prefill tokens processed.',
    (s) => s.prefixCacheQueries,
  )
  counter(
    'sglang:generation_tokens_total',
    'Number of generation tokens processed.',
    (s) => s.generationTokens,
  )
  counter('sglang:cached_tokens_total', 'Number of cached prompt tokens.', (s) => s.prefixCacheHits)
  counter(
    'sglang:num_retracted_requests_total',
    'Total number of retracted requests.',
    (s) => s.preemptions,
  )
  counter('aya_sim_steps_total', 'Engine steps run by the simulator.', (s) => s.steps)

  const ttft = histogram(
    'sglang:time_to_first_token_seconds',
    'Histogram of time to first token in seconds.',
    TTFT_BUCKETS_S,
  )
  const itl = histogram(
    'sglang:inter_token_latency_seconds',
    'Histogram of inter-token latency in seconds.',
    ITL_BUCKETS_S,
  )
  const e2e = histogram(
    'sglang:e2e_request_latency_seconds',
    'Histogram of End-to-end request latency in seconds',
    REQUEST_LATENCY_BUCKETS_S,
  )
  const observer: EngineObserver = {
    firstToken: (ttftMs) => ttft.observe(ttftMs / 1000),
    interToken: (itlMs) => itl.observe(itlMs / 1000),
    finished(result) {
      if (result.finishReason === 'abort') return
      e2e.observe((result.finishMs - result.arrivalMs) / 1000)
    },
    step(info) {
      stepLateness(info.latenessMs)
    },
  }
  return { registry, observer }
}
