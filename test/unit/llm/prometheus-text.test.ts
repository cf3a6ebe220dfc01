import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parsePrometheusText } from '../../../src/llm/prometheus-text.ts'

describe('prometheus text', () => {
  it('reads +Inf, -Inf and NaN values as the exposition format writes them', () => {
    const samples = parsePrometheusText('a +Inf\nb -Inf\nc NaN\nd 1.5e3\ne not-a-number\n')
    assert.deepEqual(
      samples.map((s) => [s.name, s.value]),
      [
        ['a', Number.POSITIVE_INFINITY],
        ['b', Number.NEGATIVE_INFINITY],
        ['c', Number.NaN],
        ['d', 1500],
      ],
    )
  })

  it('unescapes \\\\, \\" and \\n in label values, and leaves other backslashes as written', () => {
    const [sample] = parsePrometheusText(
      String.raw`m{a="x\\y",b="say \"hi\"",c="two\nlines",d="C:\temp"} 1`,
    )
    assert.deepEqual(sample!.labels, {
      a: 'x\\y',
      b: 'say "hi"',
      c: 'two\nlines',
      d: 'C:\\temp',
    })
  })

  it('skips comments and blank lines, and reads CRLF lines', () => {
    const samples = parsePrometheusText('# HELP m x\r\n\r\nm{engine="0"} 3\r\n')
    assert.deepEqual(samples, [{ name: 'm', labels: { engine: '0' }, value: 3 }])
  })

  it('reads blanks where Prometheus’s own parser allows them: before the name, before the labels, none after them', () => {
    // Each of these was skipped as malformed, and a load gauge skipped is a gauge left unknown.
    const samples = parsePrometheusText(
      [
        '  vllm:num_requests_running{engine="0"} 3',
        '\tvllm:num_requests_waiting 1',
        'vllm:kv_cache_usage_perc {engine="0"} 0.5',
        'vllm:num_preemptions_total{engine="0"}7',
        '  # TYPE m gauge',
      ].join('\n'),
    )
    assert.deepEqual(
      samples.map((s) => [s.name, s.value]),
      [
        ['vllm:num_requests_running', 3],
        ['vllm:num_requests_waiting', 1],
        ['vllm:kv_cache_usage_perc', 0.5],
        ['vllm:num_preemptions_total', 7],
      ],
    )
    const names = new Set(['vllm:num_requests_waiting'])
    assert.deepEqual(parsePrometheusText('  vllm:num_requests_waiting 4\n', names), [
      { name: 'vllm:num_requests_waiting', labels: {}, value: 4 },
    ])
    assert.deepEqual(parsePrometheusText('m3\nm\t\nm {a="b"}\n'), [], 'no value, no sample')
  })

  it('reads the sample value before an OpenMetrics exemplar, not the exemplar value', () => {
    const samples = parsePrometheusText(
      'vllm:prefix_cache_queries_total{engine="0"} 10 # {trace_id="abc"} 500 1.7e9\n# EOF\n',
    )
    assert.deepEqual(samples, [
      { name: 'vllm:prefix_cache_queries_total', labels: { engine: '0' }, value: 10 },
    ])
  })

  it('reads a closing brace, comma or escaped quote inside a label value as part of the value', () => {
    const [sample] = parsePrometheusText(String.raw`m{a="x} 9",b="p, q=\"r\"" , } 2 1700000000000`)
    assert.deepEqual(sample, { name: 'm', labels: { a: 'x} 9', b: 'p, q="r"' }, value: 2 })
  })

  it('skips a sample whose label set is malformed', () => {
    const text = ['m{a="unclosed} 1', 'm{novalue} 2', 'm{a="x"b="y"} 3', 'm{a="ok"} 4'].join('\n')
    assert.deepEqual(
      parsePrometheusText(text).map((s) => s.value),
      [4],
    )
  })

  it('parses a hostile label set tens of thousands of characters long in linear time', () => {
    // One long line whose labels never match used to be rescanned from every position of it:
    // quadratic, so a single line of a 4 MiB page held the event loop for hours.
    const names = new Set(['vllm:num_requests_running'])
    for (const labels of ['x'.repeat(60_000), `a="${'x'.repeat(60_000)}`]) {
      const started = performance.now()
      parsePrometheusText(`vllm:num_requests_running{${labels}} 1\n`, names)
      const tookMs = performance.now() - started
      assert.ok(tookMs < 250, `took ${tookMs.toFixed(0)} ms`)
    }
  })
})
