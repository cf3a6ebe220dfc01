import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseEngineMetrics } from '../../../src/llm/engine-metrics-parse.ts'

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
      prefixQueriesTotal: 0,
      prefixHitsTotal: 0,
      preemptionsTotal: 0,
      blockSize: 16,
      numGpuBlocks: 1000,
    })
  })

  it('an infinite waiting queue is unknown load, never idle', () => {
    const text = 'vllm:num_requests_running 0\nvllm:num_requests_waiting +Inf\n'
    assert.equal(parseEngineMetrics(text, 0), undefined)
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

  it('a NaN counter sample is skipped, the load still read', () => {
    const text = [
      'vllm:num_requests_running 1',
      'vllm:num_requests_waiting 2',
      'vllm:prefix_cache_queries_total{engine="0"} NaN',
      'vllm:prefix_cache_queries_total{engine="1"} 40',
    ].join('\n')
    const snapshot = parseEngineMetrics(text, 0)
    assert.equal(snapshot?.waiting, 2)
    assert.equal(snapshot?.prefixQueriesTotal, 40)
  })
})
