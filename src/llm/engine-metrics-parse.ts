import type { EngineSnapshot } from './engine-snapshot.ts'
import { type PromSample, parsePrometheusText } from './prometheus-text.ts'

/**
 * vLLM (V1 names, with the older `gpu_` names as fallbacks) and SGLang metric names for the same
 * quantities. Values are summed over engines/models exposed by one endpoint.
 *
 * SGLang (`python/sglang/srt/metrics/collector.py`, `docs/references/production_metrics.md`):
 * - prefix hits are read from its counters, `sglang:cached_tokens_total` over
 *   `sglang:prompt_tokens_total` (tokens, counted as each request finishes), like vLLM's. Its
 *   `sglang:cache_hit_rate` gauge is the hit rate of the last prefill batch logged only (the
 *   scheduler sets it to 0 at every decode log), a sample rather than a rate, so it is not read;
 * - preemptions are its retractions, `sglang:num_retracted_requests_total`.
 */
const NAMES = {
  running: ['vllm:num_requests_running', 'sglang:num_running_reqs'],
  waiting: ['vllm:num_requests_waiting', 'sglang:num_queue_reqs'],
  kvUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage'],
  prefixQueries: [
    'vllm:prefix_cache_queries_total',
    'vllm:gpu_prefix_cache_queries_total',
    'sglang:prompt_tokens_total',
  ],
  prefixHits: [
    'vllm:prefix_cache_hits_total',
    'vllm:gpu_prefix_cache_hits_total',
    'sglang:cached_tokens_total',
  ],
  preemptions: ['vllm:num_preemptions_total', 'sglang:num_retracted_requests_total'],
} as const

/** The KV-layout series, beside the load ones. */
const LAYOUT_NAMES = [
  'vllm:cache_config_info',
  'sglang:cache_config_info',
  'sglang:page_size',
  'sglang:num_pages',
  'sglang:max_total_num_tokens',
]

/** Every series read: the rest of an engine's page is skipped unparsed. */
const WANTED: ReadonlySet<string> = new Set([...Object.values(NAMES).flat(), ...LAYOUT_NAMES])

type Layout = Pick<EngineSnapshot, 'blockSize' | 'numGpuBlocks'>

/**
 * Labels that tell apart copies of one SGLang scheduler: every tensor- or pipeline-parallel rank
 * of a data-parallel rank runs the same schedule over the same KV pool, and exports the same
 * numbers when `--enable-metrics-for-all-schedulers` is on. Only `dp_rank` (absent here) separates
 * schedulers that really hold different requests.
 */
const REPLICA_LABELS: ReadonlySet<string> = new Set(['tp_rank', 'pp_rank', 'moe_ep_rank'])

/**
 * The engine's snapshot, or why the page says nothing usable about its load: none of the load
 * gauges (running, waiting, KV usage), or one that reads `NaN`, `±Inf` or below zero. Such a
 * value makes the whole reading unknown: read as a number it would be idle, idler than any real
 * engine (a negative queue wins every comparison and draws the traffic) or poison every
 * comparison, and unknown is what a policy already handles. A load gauge the page leaves out is
 * undefined in the snapshot, unknown for that quantity alone. Counters skip such samples.
 */
export function readEngineMetrics(
  text: string,
  atMs: number,
): { readonly snapshot: EngineSnapshot } | { readonly reason: string } {
  const byName = new Map<string, PromSample[]>()
  const series = new Set<string>()
  const schedules = new Set<string>()
  for (const sample of parsePrometheusText(text, WANTED)) {
    // A series written twice is a broken page, and which copy is the engine's cannot be told:
    // summed, the copies would double its load, and the first alone may be the wrong one.
    const key = seriesKey(sample)
    if (series.has(key)) return { reason: `series ${sample.name} written twice` }
    series.add(key)
    const schedule = scheduleKey(sample)
    if (schedule !== undefined) {
      if (schedules.has(schedule)) continue
      schedules.add(schedule)
    }
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
  const running = listOf(NAMES.running)
  const waiting = listOf(NAMES.waiting)
  const kvUsage = listOf(NAMES.kvUsage)
  if (running === undefined && waiting === undefined && kvUsage === undefined) {
    return { reason: 'no running, waiting or KV-usage gauge' }
  }
  for (const load of [running, waiting, kvUsage]) {
    const bad = load?.find((sample) => !(Number.isFinite(sample.value) && sample.value >= 0))
    if (bad) return { reason: `${bad.name} reads ${bad.value}` }
  }
  const kvShare = kvUsage ? kvShareOf(highest(kvUsage)) : undefined
  // KV usage that is no share (a percentage) is unknown; as the page's only load it says nothing.
  if (running === undefined && waiting === undefined && kvShare === undefined) {
    return { reason: `${kvUsage![0]!.name} reads ${highest(kvUsage!)}, not a share from 0 to 1` }
  }
  // Finite samples can still sum past the largest number: an infinite queue all the same.
  const runningSum = sumFinite(running)
  const waitingSum = sumFinite(waiting)
  for (const [sum, load] of [
    [runningSum, running],
    [waitingSum, waiting],
  ] as const) {
    if (sum === Number.POSITIVE_INFINITY) return { reason: `${load?.[0]?.name} sums past 1.8e308` }
  }
  // A counter the page leaves out, or whose samples sum past the largest number, is unknown: read
  // as 0 (or as a fall from infinity), the next reading would look like an engine's restart.
  // So is one of several engines' samples that is NaN, infinite or negative: the sum of the rest
  // would fall, and read as a restart.
  const counter = (names: readonly string[]) => {
    const samples = listOf(names)
    if (samples?.some(({ value }) => !(Number.isFinite(value) && value >= 0))) return undefined
    const sum = sumFinite(samples)
    return sum !== undefined && Number.isFinite(sum) ? sum : undefined
  }
  const layout = vllmLayout(byName) ?? sglangLayout(byName)
  const snapshot: EngineSnapshot = {
    atMs,
    running: runningSum,
    waiting: waitingSum,
    kvUsage: kvShare,
    prefixQueriesTotal: counter(NAMES.prefixQueries),
    prefixHitsTotal: counter(NAMES.prefixHits),
    preemptionsTotal: counter(NAMES.preemptions),
    blockSize: layout?.blockSize,
    numGpuBlocks: layout?.numGpuBlocks,
  }
  return { snapshot }
}

/**
 * The sum of the samples' finite values above `min`, or undefined when there are none of those
 * (no samples, or none that count).
 */
function sumFinite(samples: readonly PromSample[] | undefined, min = Number.NEGATIVE_INFINITY) {
  let total: number | undefined
  for (const { value } of samples ?? []) {
    if (Number.isFinite(value) && value > min) total = (total ?? 0) + value
  }
  return total
}

/**
 * KV usage as the fraction both engines publish, or undefined for a value that is none: past 1 by
 * more than rounding, it is a percentage or a broken page, and read as a share it left the engine
 * full for every policy but an idle one's, for good. Unknown, the policies go by their own
 * accounting of KV.
 */
function kvShareOf(usage: number): number | undefined {
  if (usage <= 1) return usage
  return usage <= 1 + KV_USAGE_ROUNDING ? 1 : undefined
}

/** How far past 1 a KV share may read from rounding alone (a pool's used over total blocks). */
const KV_USAGE_ROUNDING = 0.01

/** A sample's name and its labels but those in `skip`, in label order. */
function seriesKey(sample: PromSample, skip?: ReadonlySet<string>): string {
  const labels = Object.keys(sample.labels)
    .filter((label) => skip === undefined || !skip.has(label))
    .sort()
    .map((label) => [label, sample.labels[label]])
  return JSON.stringify([sample.name, labels])
}

/**
 * The highest value of the samples, by a loop: `Math.max(...values)` passes each as an argument,
 * and a page with more than some 120,000 of them (4 MiB holds 150,000) overflowed the stack.
 */
function highest(samples: readonly PromSample[]): number {
  let max = Number.NEGATIVE_INFINITY
  for (const { value } of samples) if (value > max) max = value
  return max
}

/** An SGLang sample's scheduler and series without its replica labels; undefined for the rest. */
function scheduleKey(sample: PromSample): string | undefined {
  if (!sample.name.startsWith('sglang:')) return undefined
  if (!Object.keys(sample.labels).some((label) => REPLICA_LABELS.has(label))) return undefined
  return seriesKey(sample, REPLICA_LABELS)
}

const numeric = (value: string | undefined): number | undefined =>
  value === undefined || value === '' || Number.isNaN(Number(value)) ? undefined : Number(value)

/**
 * vLLM's `cache_config_info{block_size, num_gpu_blocks}` info gauge. A data-parallel server writes
 * one sample per engine (`engine="0"`, `"1"`, ...), each with its own KV pool behind the one URL,
 * so the blocks sum over distinct engines.
 */
function vllmLayout(byName: ReadonlyMap<string, PromSample[]>): Layout | undefined {
  const samples = byName.get('vllm:cache_config_info')
  const first = samples?.[0]?.labels
  if (!samples || !first) return undefined
  const blocksByEngine = new Map<string, number | undefined>()
  for (const { labels } of samples) {
    const engine = labels.engine ?? ''
    if (!blocksByEngine.has(engine)) blocksByEngine.set(engine, numeric(labels.num_gpu_blocks))
  }
  let numGpuBlocks: number | undefined = 0
  for (const blocks of blocksByEngine.values()) {
    numGpuBlocks =
      blocks === undefined || numGpuBlocks === undefined ? undefined : numGpuBlocks + blocks
  }
  return { blockSize: numeric(first.block_size), numGpuBlocks }
}

/**
 * SGLang's KV pool in pages of `page_size` tokens (1 by default). Newer versions export it as the
 * gauges `sglang:page_size` and `sglang:num_pages`, earlier ones as labels on
 * `sglang:cache_config_info{page_size, num_pages}`, and every version with metrics as
 * `sglang:max_total_num_tokens`, the pool's size in tokens. Pages sum over data-parallel ranks,
 * each of which holds its own pool.
 */
function sglangLayout(byName: ReadonlyMap<string, PromSample[]>): Layout | undefined {
  const total = (name: string) => sumFinite(byName.get(name), 0)
  const info = byName.get('sglang:cache_config_info') ?? []
  const infoPages = info.map((sample) => numeric(sample.labels.num_pages) ?? Number.NaN)
  const pageSize =
    byName.get('sglang:page_size')?.find((s) => Number.isFinite(s.value) && s.value > 0)?.value ??
    numeric(info[0]?.labels.page_size)
  const numPages =
    total('sglang:num_pages') ??
    (infoPages.length > 0 && infoPages.every((pages) => pages > 0)
      ? infoPages.reduce((sum, pages) => sum + pages, 0)
      : undefined)
  if (pageSize !== undefined && numPages !== undefined) {
    return { blockSize: pageSize, numGpuBlocks: numPages }
  }
  const maxTokens = total('sglang:max_total_num_tokens')
  if (maxTokens === undefined) return undefined
  const blockSize = pageSize !== undefined && pageSize > 0 ? pageSize : 1
  return { blockSize, numGpuBlocks: Math.floor(maxTokens / blockSize) }
}
