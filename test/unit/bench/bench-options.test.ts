import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ayaConfigFor } from '../../../src/bench/aya-config.ts'
import { parseBenchArgs, UsageError } from '../../../src/bench/bench-options.ts'

const base = [
  '--trace',
  't.jsonl',
  '--replicas',
  '2',
  '--profile',
  'h100-llama3-8b',
  '--out',
  '/tmp/x',
  '--policies',
  'aya',
]

describe('aya bench --admission', () => {
  it('parses an admission block with the config’s defaults, and leaves it off by default', () => {
    const options = parseBenchArgs([...base, '--admission', '{"ttftSloMs":1000}'])
    assert.ok(options !== 'help')
    assert.equal(options.admission?.ttftSloMs, 1000)
    assert.equal(options.admission?.maxWaitMs, 30_000)
    assert.equal(options.admission?.order, 'shortest-predicted-first')
    const none = parseBenchArgs(base)
    assert.ok(none !== 'help')
    assert.equal(none.admission, undefined)
  })

  it('refuses bad JSON, unknown keys and bad values, naming the path', () => {
    for (const [json, expected] of [
      ['{x', /--admission is not JSON/],
      ['{"bogus":1}', /--admission: admission: /],
      ['{"ttftSloMs":-5}', /admission\.ttftSloMs/],
    ] as const) {
      assert.throws(
        () => parseBenchArgs([...base, '--admission', json]),
        (error: unknown) => {
          assert.ok(error instanceof UsageError)
          assert.match(error.message, expected)
          return true
        },
      )
    }
  })

  it('writes it into the upstream of the HTTP-mode config in real time', () => {
    const options = parseBenchArgs([...base, '--admission', '{"ttftSloMs":1000}'])
    assert.ok(options !== 'help')
    const config = ayaConfigFor(
      {
        policy: 'aya',
        usesHashKey: false,
        urls: ['http://127.0.0.1:1'],
        model: 'm',
        speedup: 4,
        timeoutMs: 300_000,
        scrapeIntervalMs: 50,
        admission: options.admission,
      },
      'models',
    ) as { upstreams: { fleet: { admission: Record<string, unknown> } } }
    const admission = config.upstreams.fleet.admission
    assert.equal(admission.ttftSloMs, 250)
    assert.equal(admission.maxWaitMs, 7500)
    assert.equal(admission.order, 'shortest-predicted-first')
  })
})
