import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { latenessBetween, parseEngineCounters } from '../../../src/bench/engine-scrape.ts'

const text = (
  hits: number,
  buckets: [string, number][],
  count: number,
  sum: number,
  max: number,
) => `
# HELP vllm:num_requests_running x
vllm:num_requests_running{model_name="m",engine="0"} 3
vllm:num_requests_waiting{model_name="m",engine="0"} 2
vllm:prefix_cache_queries_total{model_name="m",engine="0"} 1000
vllm:prefix_cache_hits_total{model_name="m",engine="0"} ${hits}
vllm:num_preemptions_total{model_name="m",engine="0"} 1
${buckets.map(([le, n]) => `aya_sim_step_lateness_seconds_bucket{le="${le}",model_name="m",engine="0"} ${n}`).join('\n')}
aya_sim_step_lateness_seconds_sum{model_name="m",engine="0"} ${sum}
aya_sim_step_lateness_seconds_count{model_name="m",engine="0"} ${count}
aya_sim_step_lateness_max_seconds{model_name="m",engine="0"} ${max}
`

describe('engine scrape', () => {
  it('reads vLLM counters and the simulator lateness histogram', () => {
    const c = parseEngineCounters(
      text(
        400,
        [
          ['0.001', 5],
          ['+Inf', 5],
        ],
        5,
        0.002,
        0.0009,
      ),
    )
    assert.equal(c.running + c.waiting, 5)
    assert.equal(c.prefixHits, 400)
    assert.equal(c.prefixQueries, 1000)
    assert.equal(c.preemptions, 1)
    assert.equal(c.latenessMaxMs, 0.9)
  })

  it('takes the lateness p99 bucket of the run alone', () => {
    const before = parseEngineCounters(
      text(
        0,
        [
          ['0.001', 100],
          ['0.01', 100],
          ['0.1', 100],
          ['+Inf', 100],
        ],
        100,
        0.01,
        0.0005,
      ),
    )
    const after = parseEngineCounters(
      text(
        0,
        [
          ['0.001', 100],
          ['0.01', 1100],
          ['0.1', 1100],
          ['+Inf', 1100],
        ],
        1100,
        5.01,
        0.008,
      ),
    )
    const stats = latenessBetween(before, after)
    assert.equal(stats.steps, 1000)
    // The 10 ms bucket holds the p99, but no step of the run was later than 8 ms.
    assert.equal(stats.p99Ms, 8)
    assert.ok(Math.abs(stats.meanMs - 5) < 1e-9)
    assert.equal(stats.maxMs, 8)
  })

  it('reports the run’s own maximum, not one set before it (start-up, warm-up)', () => {
    const buckets = (fast: number, slow: number): [string, number][] => [
      ['0.001', fast],
      ['0.01', fast],
      ['0.1', fast + slow],
      ['+Inf', fast + slow],
    ]
    // 10 steps before the run, one of them 80 ms late; the run's 1,000 steps all within 1 ms.
    const before = parseEngineCounters(text(0, buckets(9, 1), 10, 0.09, 0.08))
    const after = parseEngineCounters(text(0, buckets(1009, 1), 1010, 0.59, 0.08))
    const stats = latenessBetween(before, after)
    assert.equal(stats.steps, 1000)
    assert.equal(stats.p99Ms, 1)
    assert.equal(stats.maxMs, 1, 'at most the bound of the highest bucket the run reached')
  })

  it('keeps the exact maximum when the run raised it', () => {
    const buckets = (n: number): [string, number][] => [
      ['0.001', n],
      ['0.1', n],
      ['+Inf', n],
    ]
    const before = parseEngineCounters(text(0, buckets(10), 10, 0.001, 0.0002))
    const after = parseEngineCounters(text(0, buckets(1010), 1010, 0.2, 0.0007))
    const stats = latenessBetween(before, after)
    assert.equal(stats.maxMs, 0.7)
    assert.equal(stats.p99Ms, 0.7)
  })
})
