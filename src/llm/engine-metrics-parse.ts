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
  const sum = (names: readonly string[]): number | undefined => {
    for (const name of names) {
      const list = byName.get(name)
      if (list) return list.reduce((total, s) => total + s.value, 0)
    }
    return undefined
  }
  const max = (names: readonly string[]): number | undefined => {
    for (const name of names) {
      const list = byName.get(name)
      if (list) return Math.max(...list.map((s) => s.value))
    }
    return undefined
  }
  const running = sum(NAMES.running)
  const waiting = sum(NAMES.waiting)
  if (running === undefined && waiting === undefined) return undefined
  const info = byName.get('vllm:cache_config_info')?.[0]?.labels
  const numeric = (value: string | undefined) =>
    value === undefined || Number.isNaN(Number(value)) ? undefined : Number(value)
  return {
    atMs,
    running: running ?? 0,
    waiting: waiting ?? 0,
    kvUsage: max(NAMES.kvUsage) ?? 0,
    prefixQueriesTotal: sum(NAMES.prefixQueries) ?? 0,
    prefixHitsTotal: sum(NAMES.prefixHits) ?? 0,
    preemptionsTotal: sum(NAMES.preemptions) ?? 0,
    blockSize: numeric(info?.block_size),
    numGpuBlocks: numeric(info?.num_gpu_blocks),
  }
}
