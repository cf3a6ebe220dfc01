import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { readEngineMetrics } from '../../../src/llm/engine-metrics-parse.ts'
import { kvLayoutOf } from '../../../src/llm/engine-snapshot.ts'
import { parseEngineMetrics } from '../../helpers/engine-metrics.ts'

describe('engine metrics parse', () => {
  it('sums vLLM load over engines and reads the KV layout', () => {
    const snapshot = parseEngineMetrics(
      [
        'vllm:num_requests_running{engine="0"} 3',
        'vllm:num_requests_running{engine="1"} 2',
        'vllm:num_requests_waiting{engine="0"} 1',
        'vllm:kv_cache_usage_perc{engine="0"} 0.25',
        'vllm:kv_cache_usage_perc{engine="1"} 0.5',
        'vllm:cache_config_info{block_size="16",num_gpu_blocks="1000"} 1',
      ].join('\n'),
      7,
    )
    assert.deepEqual(snapshot, {
      atMs: 7,
      running: 5,
      waiting: 1,
      kvUsage: 0.5,
      prefixQueriesTotal: undefined,
      prefixHitsTotal: undefined,
      preemptionsTotal: undefined,
      blockSize: 16,
      numGpuBlocks: 1000,
    })
  })

  it('sums the KV blocks of a data-parallel server’s engines, each with its own pool', () => {
    const snapshot = parseEngineMetrics(
      [
        'vllm:num_requests_running{engine="0"} 3',
        'vllm:num_requests_waiting{engine="0"} 0',
        'vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="10000"} 1',
        'vllm:cache_config_info{block_size="16",engine="1",num_gpu_blocks="10000"} 1',
      ].join('\n'),
      0,
    )
    assert.equal(snapshot?.numGpuBlocks, 20_000)
    assert.equal(snapshot?.blockSize, 16)
  })

  it('an infinite waiting queue is unknown load, never idle', () => {
    const text = 'vllm:num_requests_running 0\nvllm:num_requests_waiting +Inf\n'
    assert.equal(parseEngineMetrics(text, 0), undefined)
  })

  it('a load gauge whose engines sum past the largest number makes the reading unknown', () => {
    // Each sample is finite; their sum is not, and read as a queue it left every other endpoint's
    // min-max queue score NaN.
    const text = [
      'vllm:num_requests_running{engine="0"} 0',
      'vllm:num_requests_waiting{engine="0"} 1e308',
      'vllm:num_requests_waiting{engine="1"} 1e308',
    ].join('\n')
    assert.equal(parseEngineMetrics(text, 0), undefined)
  })

  it('a KV layout that is not a whole, finite, plausible number of tokens is no layout', () => {
    for (const labels of [
      'block_size="1e308",num_gpu_blocks="1e308"',
      'block_size="16",num_gpu_blocks="Infinity"',
      'block_size="0.5",num_gpu_blocks="0.001"',
      'block_size="16",num_gpu_blocks="1000.5"',
      'block_size="16",num_gpu_blocks="1e15"',
    ]) {
      const text = `vllm:num_requests_running 0\nvllm:cache_config_info{${labels}} 1\n`
      const snapshot = parseEngineMetrics(text, 0)
      assert.ok(snapshot, 'the load is still read')
      assert.equal(kvLayoutOf(snapshot), undefined, labels)
    }
    const sane = parseEngineMetrics(
      'vllm:num_requests_running 0\nvllm:cache_config_info{block_size="16",num_gpu_blocks="26900"} 1\n',
      0,
    )
    assert.deepEqual(kvLayoutOf(sane!), { blockSize: 16, numGpuBlocks: 26_900 })
  })

  it('a NaN load gauge makes the reading unknown', () => {
    for (const line of [
      'vllm:num_requests_waiting{model_name="a"} NaN',
      'vllm:kv_cache_usage_perc NaN',
      'vllm:num_requests_running -Inf',
    ]) {
      const text = `vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n${line}\n`
      assert.equal(parseEngineMetrics(text, 0), undefined, line)
    }
  })

  it('a page that leaves out its queue or KV-usage gauge reads that quantity as unknown, never as 0', () => {
    // A queue read as 0 scored the engine as the emptiest of the fleet (llm-d's queue scorer gave
    // it 1, every real queue less) and drew the traffic to an engine whose load nobody knew.
    const running = 'vllm:num_requests_running{model_name="m",engine="0"} 30'
    const waiting = 'vllm:num_requests_waiting{model_name="m",engine="0"} 12'
    const kv = 'vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.875'
    const noQueue = parseEngineMetrics([running, kv].join('\n'), 0)
    assert.equal(noQueue?.waiting, undefined)
    assert.equal(noQueue?.running, 30)
    assert.equal(noQueue?.kvUsage, 0.875)
    const noKv = parseEngineMetrics([running, waiting].join('\n'), 0)
    assert.equal(noKv?.kvUsage, undefined)
    assert.equal(noKv?.waiting, 12)
    const sglang = parseEngineMetrics('sglang:num_running_reqs 4\nsglang:token_usage 0.5\n', 0)
    assert.equal(sglang?.waiting, undefined)
    assert.equal(sglang?.kvUsage, 0.5)
    assert.equal(parseEngineMetrics('sglang:num_queue_reqs 3\n', 0)?.kvUsage, undefined)
    const kvOnly = parseEngineMetrics(kv, 0)
    assert.equal(kvOnly?.kvUsage, 0.875)
    assert.equal(kvOnly?.running, undefined)
    assert.equal(kvOnly?.waiting, undefined)
    assert.equal(parseEngineMetrics('vllm:prefix_cache_queries_total 10\n', 0), undefined)
  })

  it('reads the KV usage of vLLM V0 (gpu_cache_usage_perc), and the V1 name where a page writes both', () => {
    const load = 'vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n'
    const v0 = [
      'vllm:gpu_cache_usage_perc{model_name="m"} 0.4',
      'vllm:gpu_prefix_cache_queries_total{model_name="m"} 100',
      'vllm:gpu_prefix_cache_hits_total{model_name="m"} 25',
    ]
    const old = parseEngineMetrics(load + v0.join('\n'), 0)
    assert.equal(old?.kvUsage, 0.4)
    assert.equal(old?.prefixQueriesTotal, 100)
    assert.equal(old?.prefixHitsTotal, 25)
    // `--show-hidden-metrics-for-version` keeps the deprecated names beside the new ones.
    const both = parseEngineMetrics(
      `${load}vllm:kv_cache_usage_perc{model_name="m"} 0.7\n${v0.join('\n')}`,
      0,
    )
    assert.equal(both?.kvUsage, 0.7)
  })

  it('a counter with a NaN or negative engine sample is unknown, not the rest’s smaller sum, the load still read', () => {
    for (const bad of ['NaN', '-5', '+Inf']) {
      const text = [
        'vllm:num_requests_running 1',
        'vllm:num_requests_waiting 2',
        `vllm:prefix_cache_queries_total{engine="0"} ${bad}`,
        'vllm:prefix_cache_queries_total{engine="1"} 40',
      ].join('\n')
      const snapshot = parseEngineMetrics(text, 0)
      assert.equal(snapshot?.waiting, 2, bad)
      // Read as 40, a page whose engines read 500 and 700 before would look like a restart.
      assert.equal(snapshot?.prefixQueriesTotal, undefined, bad)
    }
  })

  it('a counter the page leaves out, or whose engines sum past the largest number, is unknown', () => {
    const load = 'vllm:num_requests_running 1\nvllm:num_requests_waiting 2\n'
    const overflow = parseEngineMetrics(
      `${load}vllm:prefix_cache_queries_total{engine="0"} 1e308\nvllm:prefix_cache_queries_total{engine="1"} 1e308\nvllm:prefix_cache_hits_total 5\n`,
      0,
    )
    assert.equal(overflow?.waiting, 2, 'the load still read')
    assert.equal(overflow?.prefixQueriesTotal, undefined)
    assert.equal(overflow?.prefixHitsTotal, 5)
    assert.equal(overflow?.preemptionsTotal, undefined, 'left out')
  })

  it('reads a KV usage past 1 as full when it is rounding, and as unknown when it is no share at all', () => {
    const load = 'vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n'
    const usage = (value: string) =>
      parseEngineMetrics(`${load}vllm:kv_cache_usage_perc ${value}\n`, 0)?.kvUsage
    assert.equal(usage('0.5'), 0.5)
    assert.equal(usage('1.0000001'), 1)
    assert.equal(usage('45'), undefined, 'a percentage is not a share')
    assert.equal(parseEngineMetrics(`${load}vllm:kv_cache_usage_perc 45\n`, 0)?.waiting, 0)
    const alone = readEngineMetrics('vllm:kv_cache_usage_perc 45\n', 0)
    assert.deepEqual(alone, {
      reason: 'vllm:kv_cache_usage_perc reads 45, not a share from 0 to 1',
    })
  })

  it('says why a page gives no reading, naming the series and its value', () => {
    const reasonOf = (text: string) => {
      const reading = readEngineMetrics(text, 0)
      return 'reason' in reading ? reading.reason : undefined
    }
    assert.equal(reasonOf('vllm:num_requests_waiting NaN\n'), 'vllm:num_requests_waiting reads NaN')
    assert.equal(
      reasonOf('vllm:num_requests_running 1\nvllm:kv_cache_usage_perc -0.5\n'),
      'vllm:kv_cache_usage_perc reads -0.5',
    )
    assert.equal(reasonOf('process_cpu_seconds_total 3\n'), 'no running, waiting or KV-usage gauge')
    assert.equal(
      reasonOf('vllm:num_requests_waiting 1\nvllm:num_requests_waiting 2\n'),
      'series vllm:num_requests_waiting written twice',
    )
    assert.equal(
      reasonOf(
        'vllm:num_requests_running{engine="0"} 1e308\nvllm:num_requests_running{engine="1"} 1e308\n',
      ),
      'vllm:num_requests_running sums past 1.8e308',
    )
    assert.equal(reasonOf('vllm:num_requests_running 1\n'), undefined)
  })

  it('a negative load gauge makes the reading unknown, never idler than idle', () => {
    // A queue of -50 is no engine's: read, it scored best of the fleet on the queue (llm-d's
    // min-max put every real queue near the worst) and drew the traffic to the broken engine.
    for (const line of [
      'vllm:num_requests_waiting{engine="1"} -50',
      'vllm:num_requests_running{engine="1"} -1',
      'vllm:kv_cache_usage_perc{engine="1"} -0.5',
    ]) {
      const text = `vllm:num_requests_running{engine="0"} 1\nvllm:num_requests_waiting{engine="0"} 3\n${line}\n`
      assert.equal(parseEngineMetrics(text, 0), undefined, line)
    }
  })

  it('a series written twice makes the reading unknown, since which copy is the engine’s cannot be told', () => {
    const load = [
      'vllm:num_requests_running{model_name="m",engine="0"} 2',
      'vllm:num_requests_waiting{model_name="m",engine="0"} 7',
      'vllm:num_requests_waiting{model_name="m",engine="1"} 1',
    ]
    assert.equal(parseEngineMetrics(load.join('\n'), 0)?.waiting, 8, 'one series per engine')
    for (const copy of [
      'vllm:num_requests_waiting{engine="0",model_name="m"} 7',
      'vllm:num_requests_waiting{engine="0",model_name="m"} 9',
      'vllm:prefix_cache_queries_total{model_name="m"} 100\nvllm:prefix_cache_queries_total{model_name="m"} 100',
    ]) {
      assert.equal(parseEngineMetrics([...load, copy].join('\n'), 0), undefined, copy)
    }
  })

  it('reads the KV usage of a page with more engines than a call has arguments', () => {
    const engines = 200_000
    const lines = ['vllm:num_requests_running 1', 'vllm:num_requests_waiting 0']
    for (let e = 0; e < engines; e++) lines.push(`vllm:kv_cache_usage_perc{engine="${e}"} 0.25`)
    assert.equal(parseEngineMetrics(lines.join('\n'), 0)?.kvUsage, 0.25)
  })
})

/**
 * What SGLang writes on `/metrics`, built from its own sources (sgl-project/sglang
 * `python/sglang/srt/metrics/collector.py`, `SchedulerMetricsCollector` and
 * `TokenizerMetricsCollector`; `docs/references/production_metrics.md`, whose sample and label
 * list this follows): scheduler gauges carry `model_name`, `engine_type`, `tp_rank`, `pp_rank` and
 * `moe_ep_rank` (`dp_rank` with data parallelism), request counters carry `model_name`, and
 * `cached_tokens_total` adds `cache_source`.
 */
const SGLANG_SCHED = 'model_name="meta-llama/Llama-3.1-8B-Instruct",engine_type="unified"'
const sglangRank = (tp: number, extra = '') =>
  `{${SGLANG_SCHED},tp_rank="${tp}",pp_rank="0",moe_ep_rank="0"${extra}}`
const SGLANG_REQ = '{model_name="meta-llama/Llama-3.1-8B-Instruct"}'

function sglangMetrics(layoutLines: readonly string[], ranks: readonly number[] = [0]): string {
  const perRank = (name: string, type: string, help: string, value: string) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    ...ranks.map((tp) => `${name}${sglangRank(tp)} ${value}`),
  ]
  return [
    '# HELP sglang:prompt_tokens_total Number of prefill tokens processed.',
    '# TYPE sglang:prompt_tokens_total counter',
    `sglang:prompt_tokens_total${SGLANG_REQ} 8.128902e+06`,
    '# HELP sglang:generation_tokens_total Number of generation tokens processed.',
    '# TYPE sglang:generation_tokens_total counter',
    `sglang:generation_tokens_total${SGLANG_REQ} 7.557572e+06`,
    '# HELP sglang:cached_tokens_total Number of cached prompt tokens.',
    '# TYPE sglang:cached_tokens_total counter',
    'sglang:cached_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct",cache_source="device"} 3.0e+06',
    'sglang:cached_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct",cache_source="host"} 250000.0',
    '# HELP sglang:time_to_first_token_seconds Histogram of time to first token in seconds.',
    '# TYPE sglang:time_to_first_token_seconds histogram',
    `sglang:time_to_first_token_seconds_sum${SGLANG_REQ} 2.3518979474117756e+06`,
    'sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 6.0',
    'sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 11008.0',
    `sglang:time_to_first_token_seconds_count${SGLANG_REQ} 11008.0`,
    ...perRank('sglang:num_running_reqs', 'gauge', 'The number of running requests.', '162.0'),
    ...perRank('sglang:num_used_tokens', 'gauge', 'The number of used tokens.', '123859.0'),
    ...perRank('sglang:token_usage', 'gauge', 'The token usage.', '0.28'),
    ...perRank('sglang:gen_throughput', 'gauge', 'The generation throughput (token/s).', '86.5'),
    ...perRank(
      'sglang:num_queue_reqs',
      'gauge',
      'The number of requests in the waiting queue.',
      '26.0',
    ),
    ...perRank('sglang:cache_hit_rate', 'gauge', 'The prefix cache hit rate.', '0.0075'),
    ...perRank(
      'sglang:num_retracted_requests_total',
      'counter',
      'Total number of retracted requests.',
      '4.0',
    ),
    ...layoutLines.flatMap((line) =>
      ranks.map((tp) =>
        line.replace(/\{RANK(,[^}]*)?\}/, (_, extra = '') => sglangRank(tp, extra)),
      ),
    ),
  ].join('\n')
}

describe('engine metrics parse: SGLang', () => {
  const load = {
    atMs: 3,
    running: 162,
    waiting: 26,
    kvUsage: 0.28,
    // cached_tokens_total over prompt_tokens_total, every cache source counted as a hit.
    prefixQueriesTotal: 8_128_902,
    prefixHitsTotal: 3_250_000,
    preemptionsTotal: 4,
  }

  it('reads queue, running, KV usage, prefix hits, retractions and the pool size in tokens', () => {
    const text = sglangMetrics([
      '# HELP sglang:max_total_num_tokens Maximum total number of tokens in the KV cache pool.',
      '# TYPE sglang:max_total_num_tokens gauge',
      'sglang:max_total_num_tokens{RANK} 471258.0',
    ])
    assert.deepEqual(parseEngineMetrics(text, 3), {
      ...load,
      blockSize: 1,
      numGpuBlocks: 471_258,
    })
  })

  it('reads the page layout from cache_config_info labels, as earlier versions publish it', () => {
    const text = sglangMetrics([
      '# HELP sglang:max_total_num_tokens Maximum total number of tokens in the KV cache pool.',
      '# TYPE sglang:max_total_num_tokens gauge',
      'sglang:max_total_num_tokens{RANK} 471264.0',
      '# HELP sglang:cache_config_info Cache configuration information.',
      '# TYPE sglang:cache_config_info gauge',
      'sglang:cache_config_info{RANK,page_size="16",num_pages="29454"} 1.0',
    ])
    const snapshot = parseEngineMetrics(text, 3)
    assert.equal(snapshot?.blockSize, 16)
    assert.equal(snapshot?.numGpuBlocks, 29_454)
  })

  it('reads the page_size and num_pages gauges of newer versions', () => {
    const text = sglangMetrics([
      '# TYPE sglang:page_size gauge',
      'sglang:page_size{RANK} 64.0',
      '# TYPE sglang:num_pages gauge',
      'sglang:num_pages{RANK} 7363.0',
    ])
    const snapshot = parseEngineMetrics(text, 3)
    assert.equal(snapshot?.blockSize, 64)
    assert.equal(snapshot?.numGpuBlocks, 7_363)
  })

  it('divides max_total_num_tokens into pages when only the page size is published', () => {
    const text = sglangMetrics([
      'sglang:page_size{RANK} 16.0',
      'sglang:max_total_num_tokens{RANK} 471264.0',
    ])
    const snapshot = parseEngineMetrics(text, 3)
    assert.equal(snapshot?.blockSize, 16)
    assert.equal(snapshot?.numGpuBlocks, 29_454)
  })

  it('counts every tensor-parallel rank of one scheduler once', () => {
    // `--enable-metrics-for-all-schedulers` on TP 4: four copies of the same schedule and pool.
    const text = sglangMetrics(['sglang:max_total_num_tokens{RANK} 471258.0'], [0, 1, 2, 3])
    assert.deepEqual(parseEngineMetrics(text, 3), {
      ...load,
      blockSize: 1,
      numGpuBlocks: 471_258,
    })
  })

  it('sums data-parallel ranks, each with its own requests and pool', () => {
    const rank = (dp: number) => `{${SGLANG_SCHED},tp_rank="${dp * 2}",pp_rank="0",dp_rank="${dp}"}`
    const text = [0, 1]
      .flatMap((dp) => [
        `sglang:num_running_reqs${rank(dp)} ${10 + dp}`,
        `sglang:num_queue_reqs${rank(dp)} ${dp}`,
        `sglang:token_usage${rank(dp)} ${0.25 * (dp + 1)}`,
        `sglang:max_total_num_tokens${rank(dp)} 200000`,
      ])
      .join('\n')
    const snapshot = parseEngineMetrics(text, 0)
    assert.equal(snapshot?.running, 21)
    assert.equal(snapshot?.waiting, 1)
    assert.equal(snapshot?.kvUsage, 0.5)
    assert.equal(snapshot?.numGpuBlocks, 400_000)
  })

  it('an SGLang engine without a pool size has no layout, its load still read', () => {
    const snapshot = parseEngineMetrics(sglangMetrics([]), 3)
    assert.deepEqual(snapshot, { ...load, blockSize: undefined, numGpuBlocks: undefined })
  })
})
