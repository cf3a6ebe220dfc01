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
})
