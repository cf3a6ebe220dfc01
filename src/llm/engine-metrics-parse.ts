import type { EngineSnapshot } from './engine-snapshot.ts'
import { type PromSample, parsePrometheusText } from './prometheus-text.ts'

/**
 * vLLM (V1 names, with the older `gpu_` names as fallbacks) and SGLang metric names for the same
 * quantities. Values are summed over engines/models exposed by one endpoint.
 */
const NAMES = {
  running: ['vllm:num_requests_running', 'sglang:num_running_reqs'],
  waiting: ['vllm:num_requests_waiting', 'sglang:num_queue_reqs'],
  kvUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage'],
  prefixQueries: ['vllm:prefix_cache_queries_total', 'vllm:gpu_prefix_cache_queries_total'],
  prefixHits: ['vllm:prefix_cache_hits_total', 'vllm:gpu_prefix_cache_hits_total'],
  preemptions: ['vllm:num_preemptions_total'],
} as const

/**
 * The engine's snapshot, or undefined when it says nothing usable about its load. A load gauge
 * (running, waiting, KV usage) that reads `NaN` or `±Inf` makes the whole reading unknown: read as
 * a number it would be idle (absent) or poison every comparison, and unknown is what a policy
 * already handles. Counters skip such samples.
 */
export function parseEngineMetrics(text: string, atMs: number): EngineSnapshot | undefined {
  const samples = parsePrometheusText(text)
  const byName = new Map<string, PromSample[]>()
  for (const sample of samples) {
    let list = byName.get(sample.name)
    if (!list) {
      list = []
      byName.set(sample.name, list)
    }
    list.push(sample)
  }
  const listOf = (names: readonly string[]): PromSample[] | undefined => {
    for (const name of names) {
      const list = byName.get(name)
      if (list) return list
    }
    return undefined
  }
  // A load gauge's samples, or undefined when absent; a non-finite one makes the load unknown.
  let unknownLoad = false
  const gauge = (names: readonly string[]): readonly number[] | undefined => {
    const list = listOf(names)
    if (!list) return undefined
    const values = list.map((s) => s.value)
    if (!values.every(Number.isFinite)) unknownLoad = true
    return values
  }
  const counter = (names: readonly string[]): number | undefined => {
    const list = listOf(names)
    if (!list) return undefined
    let total = 0
    for (const sample of list) if (Number.isFinite(sample.value)) total += sample.value
    return total
  }
  const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0)
  const running = gauge(NAMES.running)
  const waiting = gauge(NAMES.waiting)
  const kvUsage = gauge(NAMES.kvUsage)
  if (running === undefined && waiting === undefined) return undefined
  if (unknownLoad) return undefined
  const info = byName.get('vllm:cache_config_info')?.[0]?.labels
  const numeric = (value: string | undefined) =>
    value === undefined || Number.isNaN(Number(value)) ? undefined : Number(value)
  return {
    atMs,
    running: running ? sum(running) : 0,
    waiting: waiting ? sum(waiting) : 0,
    kvUsage: kvUsage ? Math.max(...kvUsage) : 0,
    prefixQueriesTotal: counter(NAMES.prefixQueries) ?? 0,
    prefixHitsTotal: counter(NAMES.prefixHits) ?? 0,
    preemptionsTotal: counter(NAMES.preemptions) ?? 0,
    blockSize: numeric(info?.block_size),
    numGpuBlocks: numeric(info?.num_gpu_blocks),
  }
}
