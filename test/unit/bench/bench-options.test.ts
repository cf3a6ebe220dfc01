import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ayaConfigFor } from '../../../src/bench/aya-config.ts'
import { parseBenchArgs, UsageError } from '../../../src/bench/bench-options.ts'
import { BENCH_REQUIRED_ARGS } from '../../helpers/bench-args.ts'

const common = BENCH_REQUIRED_ARGS
const base = [...common, '--policies', 'aya']

/** The admission block the HTTP-mode config gives the fleet, run at `--speedup 4`. */
function fleetAdmissionAt4x(
  admission: Parameters<typeof ayaConfigFor>[0]['admission'],
): Record<string, unknown> {
  const config = ayaConfigFor(
    {
      policy: 'aya',
      usesHashKey: false,
      urls: ['http://127.0.0.1:1'],
      model: 'm',
      speedup: 4,
      timeoutMs: 300_000,
      scrapeIntervalMs: 50,
      admission,
    },
    'models',
  ) as { upstreams: { fleet: { admission: Record<string, unknown> } } }
  return config.upstreams.fleet.admission
}

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
    const options = parseBenchArgs([
      ...base,
      '--admission',
      '{"ttftSloMs":1000,"classes":{"batch":{"maxWaitMs":60000}}}',
    ])
    assert.ok(options !== 'help')
    const admission = fleetAdmissionAt4x(options.admission)
    assert.equal(admission.ttftSloMs, 250)
    assert.equal(admission.maxWaitMs, 7500)
    assert.equal(admission.maxBypassMs, 1250)
    assert.equal(admission.recheckMs, 6)
    assert.equal(admission.order, 'shortest-predicted-first')
    assert.deepEqual(admission.classes, { batch: { maxWaitMs: 15_000 } })
  })

  it('keeps a maxBypassMs of 0 at 0 in real time (docs/bench.md: durations are trace time)', () => {
    const options = parseBenchArgs([...base, '--admission', '{"maxBypassMs":0}'])
    assert.ok(options !== 'help')
    assert.equal(fleetAdmissionAt4x(options.admission).maxBypassMs, 0)
  })
})

describe('aya bench --policy-options', () => {
  it('passes each policy its options, checked by its schema', () => {
    const options = parseBenchArgs([
      ...common,
      '--policies',
      'aya,round-robin',
      '--policy-options',
      '{"aya":{"affinityCredit":2}}',
    ])
    assert.ok(options !== 'help')
    assert.deepEqual(options.policyOptions, { aya: { affinityCredit: 2 } })
    const none = parseBenchArgs([...common, '--policies', 'aya'])
    assert.ok(none !== 'help')
    assert.deepEqual(none.policyOptions, {})
  })

  it('refuses bad JSON, unknown policies, unknown keys and out-of-range values', () => {
    for (const json of [
      '{aya',
      '[1]',
      '{"llm-d-sticky":{}}',
      '{"aya":3}',
      '{"aya":{"bogus":1}}',
      '{"aya":{"affinityCredit":-1}}',
    ]) {
      assert.throws(
        () => parseBenchArgs([...common, '--policies', 'aya', '--policy-options', json]),
        UsageError,
        json,
      )
    }
  })
})

describe('aya bench --routers', () => {
  it('defaults to one router and takes more in either mode', () => {
    const one = parseBenchArgs(base)
    assert.ok(one !== 'help')
    assert.equal(one.routers, 1)
    assert.equal(one.sharedState, false)
    for (const mode of ['des', 'http']) {
      const two = parseBenchArgs([...base, '--mode', mode, '--routers', '2'])
      assert.ok(two !== 'help')
      assert.equal(two.routers, 2)
    }
    assert.throws(() => parseBenchArgs([...base, '--mode', 'des', '--routers', '0']), UsageError)
    const most = parseBenchArgs([...base, '--mode', 'des', '--routers', '64'])
    assert.ok(most !== 'help' && most.routers === 64)
    assert.throws(
      () => parseBenchArgs([...base, '--mode', 'http', '--routers', '1000']),
      /--routers must be an integer from 1 to 64, got '1000'/,
    )
  })

  it('shares state between routers only when there are several', () => {
    const shared = parseBenchArgs([...base, '--routers', '2', '--shared-state'])
    assert.ok(shared !== 'help')
    assert.equal(shared.sharedState, true)
    assert.throws(() => parseBenchArgs([...base, '--shared-state']), /needs --routers 2 or more/)
  })
})

describe('aya bench --replicas', () => {
  it('takes as many engines as aya sim serves, and refuses more before reading the trace', () => {
    const args = (replicas: string) => [
      ...base.filter((_, i) => base[i - 1] !== '--replicas' && base[i] !== '--replicas'),
      '--replicas',
      replicas,
    ]
    const most = parseBenchArgs(args('1024'))
    assert.ok(most !== 'help')
    assert.equal(most.replicas, 1024)
    for (const mode of ['des', 'http']) {
      assert.throws(
        () => parseBenchArgs([...args('1025'), '--mode', mode]),
        /--replicas must be an integer from 1 to 1024, got '1025'/,
      )
    }
  })
})

describe('aya bench --window', () => {
  it('says an end before its start is why a window is refused', () => {
    for (const window of ['600:100', '5:5', 'abc', '-5:10']) {
      assert.throws(
        () => parseBenchArgs([...base, `--window=${window}`]),
        new RegExp(`--window must be START:END seconds with 0 <= START < END, got '${window}'`),
      )
    }
  })
})

describe('aya bench --seed', () => {
  it('refuses an empty or blank seed rather than running seed 0', () => {
    for (const seed of ['', ' ']) {
      assert.throws(
        () => parseBenchArgs([...base, `--seed=${seed}`]),
        /--seed must be an integer from 0 to 4294967295/,
        JSON.stringify(seed),
      )
    }
    const zero = parseBenchArgs([...base, '--seed', '0'])
    assert.ok(zero !== 'help')
    assert.equal(zero.seed, 0)
  })
})

describe('the bench’s Aya config with shared state', () => {
  it('puts every router on the run’s Redis, and keeps state in memory otherwise', () => {
    const input = {
      policy: 'aya',
      usesHashKey: false,
      urls: ['http://127.0.0.1:1'],
      model: 'm',
      speedup: 1,
      timeoutMs: 300_000,
      scrapeIntervalMs: 50,
    }
    assert.deepEqual(ayaConfigFor({ ...input, stateUrl: 'unix:///tmp/r.sock' }, 'models').state, {
      store: 'redis',
      url: 'unix:///tmp/r.sock',
    })
    assert.equal(ayaConfigFor(input, 'models').state, undefined)
  })
})

describe('aya bench time flags in HTTP mode', () => {
  it('refuses a time that no real timer can wait, naming the flag, before any work', () => {
    const policy = ['--policies', 'round-robin']
    for (const [flag, value, speedup] of [
      ['--timeout-ms', '3000000000', '1'],
      ['--scrape-interval-ms', '3000000000', '1'],
      ['--sample-interval-ms', '3000000000', '1'],
      ['--timeout-ms', '2000000000', '0.5'],
    ] as const) {
      const argv = [...common, ...policy, flag, value, '--speedup', speedup]
      assert.throws(
        () => parseBenchArgs([...argv, '--mode', 'http']),
        (error: Error) =>
          error instanceof UsageError &&
          error.message.startsWith(`${flag} ${value} at --speedup ${speedup}`),
        flag,
      )
      // Virtual time has no real timers: the same value is fine there.
      assert.ok(parseBenchArgs([...argv, '--mode', 'des']) !== 'help')
    }
    const sweep = ['sweep', ...common, ...policy, '--rate-scale-min', '1', '--rate-scale-max', '2']
    assert.throws(
      () => parseBenchArgs([...sweep, '--confirm-http', '--timeout-ms', '3000000000']),
      /--timeout-ms 3000000000 at --speedup 1/,
    )
    // At 2× speed the same trace time is half as long in real time, within reach.
    assert.ok(
      parseBenchArgs([...common, ...policy, '--timeout-ms', '3000000000', '--speedup', '2']) !==
        'help',
    )
  })
})

describe('aya bench --profile', () => {
  it('names the flag and its value in every refusal', () => {
    const args = (profile: string) => [
      ...['--trace', 'x.jsonl', '--replicas', '2', '--out', '/tmp/x'],
      ...['--policies', 'aya', '--profile', profile],
    ]
    for (const [profile, why] of [
      ['nope', /unknown sim profile 'nope'/],
      [' , ', /profile is empty/],
      ['h100-llama3-8b:0,a100-llama3-8b:2', /bad replica count/],
      ['h100-llama3-8b:1,a100-llama3-8b:2', /describes 3 replicas, but --replicas is 2/],
    ] as const) {
      assert.throws(
        () => parseBenchArgs(args(profile)),
        (error: Error) =>
          error instanceof UsageError &&
          error.message.startsWith(`--profile '${profile}': `) &&
          why.test(error.message),
        profile,
      )
    }
  })
})

describe('aya bench --policies', () => {
  it('names the flag and the policy it refuses', () => {
    const args = (policies: string) => [...common, '--policies', policies]
    assert.throws(
      () => parseBenchArgs(args('round-robin,fastest')),
      /^Error: --policies: unknown policy 'fastest' \(known: .*round-robin/,
    )
    assert.throws(
      () => parseBenchArgs(args('aya,round-robin, aya')),
      /^Error: --policies repeats 'aya'$/,
    )
  })
})
