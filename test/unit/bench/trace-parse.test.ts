import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  detectTraceFormat,
  parseAzureCsv,
  parseAzureTimestamp,
  parseMooncakeJsonl,
  parseShareGptCsv,
  parseTraceRows,
  TraceParseError,
} from '../../../src/bench/trace-parse.ts'
import { TRACES_DIR } from './shared-traces.ts'

const TRACES = TRACES_DIR
const traceText = (name: string) => readFileSync(join(TRACES, name), 'utf8')

describe('trace parsing', () => {
  it('reads Mooncake JSONL rows with their hash ids', () => {
    const rows = parseMooncakeJsonl(
      '{"timestamp": 0, "input_length": 600, "output_length": 7, "hash_ids": [0, 1]}\n' +
        '{"timestamp": 3000, "input_length": 10, "output_length": 1, "hash_ids": [0]}\n',
    )
    assert.deepEqual(rows, [
      { timestampMs: 0, inputTokens: 600, outputTokens: 7, hashIds: [0, 1] },
      { timestampMs: 3000, inputTokens: 10, outputTokens: 1, hashIds: [0] },
    ])
    assert.throws(() => parseMooncakeJsonl('{"timestamp": 0}\n'), TraceParseError)
    assert.throws(() => parseMooncakeJsonl('not json\n'), /line 1/)
  })

  it('names the Mooncake line, the bad field and its value', () => {
    const row = (fields: string) =>
      `{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]}\n{${fields}}\n`
    for (const [fields, message] of [
      [
        '"timestamp": "x", "input_length": 10, "output_length": 1, "hash_ids": [1]',
        /line 2: timestamp must be a number of milliseconds, got "x"$/,
      ],
      [
        '"timestamp": 0, "input_length": -5, "output_length": 1, "hash_ids": [1]',
        /line 2: input_length must be a non-negative integer, got -5$/,
      ],
      [
        '"timestamp": 0, "input_length": 10, "hash_ids": [1]',
        /line 2: output_length must be a non-negative integer, got nothing$/,
      ],
      [
        '"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1, 2.5]',
        /line 2: hash_ids\[1\] must be a non-negative integer, got 2\.5$/,
      ],
    ] as const) {
      assert.throws(() => parseMooncakeJsonl(row(fields)), message)
    }
    // A line of JSON that is not an object: a parse error, not a crash reading its fields.
    for (const line of ['null', '5', '[1]']) {
      assert.throws(
        () => parseMooncakeJsonl(`${line}\n`),
        (error: Error) =>
          error instanceof TraceParseError && /^line 1: expected/.test(error.message),
      )
    }
  })

  it('starts its errors with the file it reads', () => {
    assert.throws(
      () => parseTraceRows('mooncake', '{"timestamp": 0,\n', '/traces/cut.jsonl'),
      /\/traces\/cut\.jsonl: line 1: not JSON/,
    )
    assert.throws(
      () => parseTraceRows('azure', 'TIMESTAMP,ContextTokens,GeneratedTokens\nx,1,1\n', 'a.csv'),
      /a\.csv: line 2: bad TIMESTAMP 'x'$/,
    )
  })

  it('refuses a blank or missing CSV cell rather than reading it as 0 tokens, naming the column', () => {
    const azure = 'TIMESTAMP,ContextTokens,GeneratedTokens\n'
    assert.throws(
      () => parseAzureCsv(`${azure}2023-11-16 18:17:03.98,,10\n`),
      /^Error: line 2: ContextTokens must be a non-negative integer, got ''$/,
    )
    assert.throws(
      () => parseAzureCsv(`${azure}2023-11-16 18:17:03.98,5\n`),
      /line 2: GeneratedTokens must be a non-negative integer, got nothing$/,
    )
    assert.throws(
      () => parseShareGptCsv('num_prefill_tokens,num_decode_tokens\n74, \n'),
      /line 2: num_decode_tokens must be a non-negative integer, got ''$/,
    )
  })

  it('counts blank lines when it names the line of a bad CSV row', () => {
    assert.throws(
      () =>
        parseAzureCsv(
          'TIMESTAMP,ContextTokens,GeneratedTokens\n\n2023-11-16 18:17:03.98,5,10\n\n\n2023-11-16 18:17:04.98,x,10\n',
        ),
      /^Error: line 6: ContextTokens must be a non-negative integer, got 'x'$/,
    )
    assert.throws(
      () => parseShareGptCsv('\nnum_prefill_tokens,num_decode_tokens\n\n74,-1\n'),
      /^Error: line 4: num_decode_tokens/,
    )
  })

  it('reads Azure timestamps to sub-millisecond epoch time', () => {
    const a = parseAzureTimestamp('2023-11-16 18:17:03.9799600')!
    const b = parseAzureTimestamp('2023-11-16 18:17:04.0319600')!
    assert.equal(a, Date.UTC(2023, 10, 16, 18, 17, 3) + 979.96)
    assert.ok(Math.abs(b - a - 52) < 1e-6)
    assert.equal(parseAzureTimestamp('16/11/2023'), undefined)
    // Out-of-range fields are malformed, not rolled over into the next month, day or hour.
    for (const bad of [
      '2023-13-16 18:17:03.98',
      '2023-02-30 18:17:03.98',
      '2023-11-16 24:17:03.98',
      '2023-11-16 18:60:03.98',
      '2023-11-16 18:17:60.98',
    ]) {
      assert.equal(parseAzureTimestamp(bad), undefined, bad)
    }
    assert.equal(parseAzureTimestamp('2024-02-29 23:59:59'), Date.UTC(2024, 1, 29, 23, 59, 59))
    const rows = parseAzureCsv(
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n',
    )
    assert.deepEqual(rows, [{ timestampMs: a, inputTokens: 4808, outputTokens: 10 }])
  })

  it('reads ShareGPT lengths without timestamps', () => {
    const rows = parseShareGptCsv(
      'num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n74,918,992,0.08\n',
    )
    assert.deepEqual(rows, [{ timestampMs: undefined, inputTokens: 74, outputTokens: 918 }])
    assert.throws(() => parseShareGptCsv('a,b\n1,2\n'), /missing column/)
  })

  it('detects and parses every trace in the shared folder with its documented row count', () => {
    const expected: Record<string, [string, number]> = {
      'azure_llm_2023_code.csv': ['azure', 7000],
      'azure_llm_2023_conv.csv': ['azure', 13_927],
      'mooncake_fast25_conversation.jsonl': ['mooncake', 7851],
      'mooncake_fast25_synthetic.jsonl': ['mooncake', 2752],
      'sharegpt_lengths_llama2.csv': ['sharegpt', 20_000],
    }
    for (const [name, [format, count]] of Object.entries(expected)) {
      const text = traceText(name)
      assert.equal(detectTraceFormat(text), format, name)
      const rows = parseTraceRows(detectTraceFormat(text)!, text)
      assert.equal(rows.length, count, name)
      assert.ok(
        rows.every((r) => r.inputTokens >= 1 && r.outputTokens >= 1),
        name,
      )
    }
    assert.equal(detectTraceFormat('x,y\n1,2\n'), undefined)
  })

  it('keeps the Mooncake invariant len(hash_ids) = ceil(input / 512)', () => {
    const rows = parseMooncakeJsonl(traceText('mooncake_fast25_synthetic.jsonl'))
    assert.ok(rows.every((r) => r.hashIds!.length === Math.ceil(r.inputTokens / 512)))
  })
})
