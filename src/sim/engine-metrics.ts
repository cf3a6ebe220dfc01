import { Counter, Gauge, Registry } from 'prom-client'
import type { EngineObserver, EngineStats } from './engine.ts'
import { createMetricFamilies } from './metric-families.ts'
import type { EngineProfile } from './profiles.ts'

/** Buckets as vLLM's `PrometheusStatLogger` declares them (research/vllm-sim.md §3.2). */
export const TTFT_BUCKETS_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
  160, 640, 2560,
]
export const ITL_BUCKETS_S = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
]
export const REQUEST_LATENCY_BUCKETS_S = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
]

function oneTwoFive(max: number): number[] {
  const out: number[] = []
  for (let scale = 1; ; scale *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * scale > max) return out
      out.push(m * scale)
    }
  }
}

function iterationBuckets(maxTokens: number): number[] {
  const out = [1, 8]
  for (let b = 16; b <= maxTokens; b *= 2) out.push(b)
  return out
}

export interface EngineMetricsOptions {
  readonly profile: EngineProfile
  readonly modelName: string
  /** vLLM's engine index label; `"0"` for a single-engine server. */
  readonly engineIndex?: string
}

export interface EngineMetrics {
  readonly registry: Registry
  readonly observer: EngineObserver
}

/**
 * vLLM's `/metrics` for one engine, in a private registry: gauges and counters read the engine's
 * stats at scrape time; histograms are fed by the engine's observer, in engine (trace) seconds.
 */
export function createEngineMetrics(
  options: EngineMetricsOptions,
  stats: () => EngineStats,
): EngineMetrics {
  const registry = new Registry()
  const labels = { model_name: options.modelName, engine: options.engineIndex ?? '0' }
  const labelNames = ['model_name', 'engine'] as const
  const registers = [registry]
  const { profile } = options
  const { gauge, counter, histogram, stepLateness } = createMetricFamilies(labels, registry, stats)

  gauge(
    'vllm:num_requests_running',
    'Number of requests in model execution batches.',
    (s) => s.running,
  )
  gauge(
    'vllm:num_requests_waiting',
    'Number of requests waiting to be processed.',
    (s) => s.waiting,
  )
  gauge(
    'vllm:kv_cache_usage_perc',
    'KV-cache usage. 1 means 100 percent usage.',
    (s) => s.kvCacheUsage,
  )

  counter(
    'vllm:prefix_cache_queries_total',
    'Prefix cache queries, in terms of number of queried tokens.',
    (s) => s.prefixCacheQueries,
  )
  counter(
    'vllm:prefix_cache_hits_total',
    'Prefix cache hits, in terms of number of cached tokens.',
    (s) => s.prefixCacheHits,
  )
  counter(
    'vllm:num_preemptions_total',
    'Cumulative number of preemption from the engine.',
    (s) => s.preemptions,
  )
  counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', (s) => s.promptTokens)
  counter(
    'vllm:generation_tokens_total',
    'Number of generation tokens processed.',
    (s) => s.generationTokens,
  )
  counter('aya_sim_steps_total', 'Engine steps run by the simulator.', (s) => s.steps)

  const exportedSuccess = { stop: 0, length: 0, abort: 0 }
  new Counter({
    name: 'vllm:request_success_total',
    help: 'Count of successfully processed requests.',
    labelNames: [...labelNames, 'finished_reason'],
    registers,
    collect() {
      const current = stats().requestSuccess
      for (const reason of ['stop', 'length', 'abort'] as const) {
        this.inc({ ...labels, finished_reason: reason }, current[reason] - exportedSuccess[reason])
        exportedSuccess[reason] = current[reason]
      }
    },
  })

  new Gauge({
    name: 'vllm:cache_config_info',
    help: 'Information of the LLMEngine CacheConfig',
    labelNames: [
      'block_size',
      'cache_dtype',
      'enable_prefix_caching',
      'engine',
      'gpu_memory_utilization',
      'num_gpu_blocks',
    ],
    registers,
  }).set(
    {
      block_size: String(profile.blockSizeTokens),
      cache_dtype: 'auto',
      enable_prefix_caching: 'True',
      engine: labels.engine,
      gpu_memory_utilization: '0.9',
      num_gpu_blocks: String(profile.numGpuBlocks),
    },
    1,
  )

  const ttft = histogram(
    'vllm:time_to_first_token_seconds',
    'Histogram of time to first token in seconds.',
    TTFT_BUCKETS_S,
  )
  const itl = histogram(
    'vllm:inter_token_latency_seconds',
    'Histogram of inter-token latency in seconds.',
    ITL_BUCKETS_S,
  )
  const e2e = histogram(
    'vllm:e2e_request_latency_seconds',
    'Histogram of e2e request latency in seconds.',
    REQUEST_LATENCY_BUCKETS_S,
  )
  const queue = histogram(
    'vllm:request_queue_time_seconds',
    'Histogram of time spent in WAITING phase for request.',
    REQUEST_LATENCY_BUCKETS_S,
  )
  const tokenBuckets = oneTwoFive(profile.maxModelLen)
  const promptTokens = histogram(
    'vllm:request_prompt_tokens',
    'Number of prefill tokens processed.',
    tokenBuckets,
  )
  const generationTokens = histogram(
    'vllm:request_generation_tokens',
    'Number of generation tokens processed.',
    tokenBuckets,
  )
  const iterationTokens = histogram(
    'vllm:iteration_tokens_total',
    'Histogram of number of tokens per engine_step.',
    iterationBuckets(profile.maxNumBatchedTokens),
  )
  const observer: EngineObserver = {
    firstToken(ttftMs, queueMs) {
      ttft.observe(ttftMs / 1000)
      queue.observe(queueMs / 1000)
    },
    interToken: (itlMs) => itl.observe(itlMs / 1000),
    finished(result) {
      if (result.finishReason === 'abort') return
      e2e.observe((result.finishMs - result.arrivalMs) / 1000)
      promptTokens.observe(result.promptTokens)
      generationTokens.observe(result.completionTokens)
    },
    step(info) {
      iterationTokens.observe(info.prefillTokens + info.decodeSeqs)
      stepLateness(info.latenessMs)
    },
  }
  return { registry, observer }
}
