import assert from 'node:assert/strict'
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runBenchCommand } from '../../../src/bench/bench-command.ts'
import { BenchInterrupted } from '../../../src/bench/bench-interrupted.ts'
import { POLICY_RESULT_KEYS } from '../../../src/bench/policy-summary.ts'
import { BENCH_REQUIRED_ARGS } from '../../helpers/bench-args.ts'
import { TRACE_FILES, tracePath } from './shared-traces.ts'

function capture() {
  const out = { stdout: '', stderr: '' }
  const io = {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
  }
  return { out, io }
}

const META_KEYS = [
  'trace',
  'format',
  'command',
  'mode',
  'window',
  'timing',
  'rebase',
  'rateScale',
  'rate',
  'lengthScale',
  'speedup',
  'seed',
  'requests',
  'arrivalSpanS',
  'maxTokens',
  'blockTokens',
  'fleet',
  'clipping',
  'slo',
  'scrapeIntervalMs',
  'timeoutMs',
  'sweep',
  'commit',
  'dirty',
  'machine',
  'idealPrefixHitRate',
  'lruBoundPrefixHitRate',
  'prefillCeiling',
  'valid',
  'createdAt',
]

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aya-bench-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A temporary directory holding `trace.jsonl`, a Mooncake trace of one request. */
async function oneRequestTrace(t: { after(fn: () => Promise<void>): void }) {
  const dir = await tempDir(t)
  const trace = join(dir, 'trace.jsonl')
  await writeFile(
    trace,
    '{"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [1]}\n',
  )
  return { dir, trace }
}

/** A virtual-time run of the Mooncake conversation trace at 0.25 length on two engines. */
const desConversationArgs = (policies: string, window: string, out: string): string[] => [
  '--trace',
  tracePath(TRACE_FILES.mooncakeConversation),
  '--policies',
  policies,
  '--replicas',
  '2',
  '--profile',
  'h100-llama3-8b',
  '--mode',
  'des',
  '--window',
  window,
  '--length-scale',
  '0.25',
  '--out',
  out,
]

describe('aya bench command', () => {
  it('exits 2 with a message for bad flags, 0 for --help', async () => {
    const base = BENCH_REQUIRED_ARGS
    for (const argv of [
      [...base],
      [...base, '--policies', 'nope'],
      [...base, '--policies', 'round-robin', '--mode', 'fast'],
      [...base, '--policies', 'round-robin', '--window', '5'],
      [...base, '--policies', 'round-robin', '--rate-scale', '0'],
      [...base, '--policies', 'round-robin', '--bogus'],
      [...base, '--policies', 'round-robin', '--rate-scale-min', '1'],
      [
        'sweep',
        ...base,
        '--policies',
        'round-robin',
        '--rate-scale-min',
        '4',
        '--rate-scale-max',
        '2',
      ],
      [
        'sweep',
        ...base,
        '--policies',
        'round-robin',
        '--rate-scale-min',
        '1',
        '--rate-scale-max',
        '2',
        '--precision',
        '150%',
      ],
      [
        '--policies',
        'round-robin',
        '--replicas',
        '3',
        '--profile',
        'h100-llama3-8b:2',
        '--trace',
        'x',
        '--out',
        'y',
      ],
    ]) {
      const { out, io } = capture()
      assert.equal(await runBenchCommand(argv, io), 2, argv.join(' '))
      assert.match(out.stderr, /^aya bench: .+\n\nUsage:/, argv.join(' '))
    }
    const { out, io } = capture()
    assert.equal(await runBenchCommand(['--help'], io), 0)
    assert.match(out.stdout, /--rate-scale-min/)
  })

  it('exits 2 for a file that is not a trace', async (t) => {
    const dir = await tempDir(t)
    const { out, io } = capture()
    const argv = [
      '--trace',
      join(import.meta.dirname, 'bench-command.test.ts'),
      '--policies',
      'round-robin',
    ]
    const code = await runBenchCommand(
      [...argv, '--replicas', '1', '--profile', 'h100-llama3-8b', '--mode', 'des', '--out', dir],
      io,
    )
    assert.equal(code, 2)
    assert.match(out.stderr, /not a Mooncake/)
  })

  it('exits 2 with one line, no stack, for a trace it cannot read or an --out it cannot create', async (t) => {
    const { dir, trace } = await oneRequestTrace(t)
    const run = (traceFile: string, outDir: string) =>
      [
        ...['--trace', traceFile, '--policies', 'round-robin', '--replicas', '1'],
        ...['--profile', 'h100-llama3-8b', '--mode', 'des', '--no-progress', '--out', outDir],
      ] as string[]
    for (const [argv, message] of [
      [
        run(join(dir, 'missing.jsonl'), dir),
        /^aya bench: cannot read --trace .*missing\.jsonl: ENOENT/,
      ],
      [run(dir, dir), /^aya bench: cannot read --trace .*: EISDIR/],
      [run(trace, trace), /^aya bench: cannot create --out .*trace\.jsonl: EEXIST/],
    ] as const) {
      const { out, io } = capture()
      assert.equal(await runBenchCommand([...argv], io), 2, argv.join(' '))
      assert.match(out.stderr, message)
      assert.equal(out.stderr.split('\n').filter((line) => line !== '').length, 1, out.stderr)
    }
  })

  it('exits 2 before any run when a report in --out cannot be written', async (t) => {
    const { dir, trace } = await oneRequestTrace(t)
    const outDir = join(dir, 'out')
    await mkdir(join(outDir, 'report.md'), { recursive: true })
    const { out, io } = capture()
    const argv = [
      ...['--trace', trace, '--policies', 'round-robin', '--replicas', '1'],
      ...['--profile', 'h100-llama3-8b', '--mode', 'des', '--out', outDir],
    ]
    assert.equal(await runBenchCommand(argv, io), 2, out.stderr)
    assert.match(
      out.stderr,
      /^aya bench: cannot write the reports into --out .*out: .*report\.md exists and is not a file\n$/,
    )
    // Refused before the run: no progress bar, and no report half written.
    await assert.rejects(access(join(outDir, 'report.json')))
  })

  it('exits 2 with one line, not a stack trace, when HTTP mode has no built Aya to start', async (t) => {
    const { dir, trace } = await oneRequestTrace(t)
    const { out, io } = capture()
    const argv = [
      ...['--trace', trace, '--policies', 'round-robin', '--replicas', '1'],
      ...['--profile', 'h100-llama3-8b', '--mode', 'http', '--out', join(dir, 'out')],
    ]
    const missing = join(dir, 'no-build', 'aya.js')
    assert.equal(await runBenchCommand(argv, io, { ayaBin: missing }), 2, out.stderr)
    assert.equal(
      out.stderr,
      `aya bench: HTTP mode starts ${missing}: run 'npm run build' first (or use --mode des)\n`,
    )
  })

  it('exits 2 before any run when its sampling or scraping would tick without end', async (t) => {
    const dir = await tempDir(t)
    const rows = (timestamps: number[]) =>
      timestamps
        .map(
          (ms) => `{"timestamp": ${ms}, "input_length": 100, "output_length": 10, "hash_ids": [1]}`,
        )
        .join('\n')
    const relative = join(dir, 'relative.jsonl')
    await writeFile(relative, rows([0, 3000, 6000]))
    // One row in epoch milliseconds among relative ones: 55 years of arrivals.
    const outlier = join(dir, 'outlier.jsonl')
    await writeFile(outlier, rows([0, 3000, 1_733_600_000_000]))
    const run = (traceFile: string, ...extra: string[]) => [
      ...['--trace', traceFile, '--policies', 'round-robin', '--replicas', '1'],
      ...['--profile', 'h100-llama3-8b', '--mode', 'des', '--no-progress', '--out', dir],
      ...extra,
    ]
    for (const [argv, message] of [
      [run(outlier), /--sample-interval-ms 1000 over the replay's 1733600000 s of arrivals/],
      [run(relative, '--sample-interval-ms', '0.00001'), /--sample-interval-ms 0\.00001 over/],
      [run(relative, '--scrape-interval-ms', '0.0000001'), /--scrape-interval-ms 1e-7 over/],
      [
        ['sweep', ...run(relative, '--rate-scale-min', '0.000001', '--rate-scale-max', '1')],
        /--sample-interval-ms 1000 over the replay's 6000000 s/,
      ],
    ] as const) {
      // Without the check these runs go on for ever: the signal ends them, failing the test.
      const { out, io } = capture()
      const code = await runBenchCommand([...argv], io, { signal: AbortSignal.timeout(20_000) })
      assert.equal(code, 2, out.stderr)
      assert.match(out.stderr, message)
      assert.equal(out.stderr.split('\n').filter((line) => line !== '').length, 1, out.stderr)
    }
    await assert.rejects(access(join(dir, 'report.json')))
  })

  it('runs two policies in virtual time and writes the report with the documented keys', async (t) => {
    const dir = await tempDir(t)
    const { out, io } = capture()
    const code = await runBenchCommand(
      [
        ...desConversationArgs('round-robin,least-request', '0:60', dir),
        '--rate-scale',
        '2',
        '--no-progress',
      ],
      io,
    )
    assert.equal(code, 0, out.stderr)
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'))
    assert.deepEqual(Object.keys(report).sort(), ['meta', 'policies', 'runs'])
    assert.deepEqual(Object.keys(report.meta).sort(), [...META_KEYS].sort())
    assert.deepEqual(Object.keys(report.policies), ['round-robin', 'least-request'])
    for (const result of Object.values(report.policies) as Record<string, unknown>[]) {
      assert.deepEqual(Object.keys(result).sort(), [...POLICY_RESULT_KEYS].sort())
      assert.equal(result.failed, 0)
      assert.equal(result.completed, report.meta.requests)
      assert.ok((result.ttftP50Ms as number) > 0)
      assert.ok((result.prefixHitRate as number) > 0)
    }
    assert.equal(report.meta.mode, 'des')
    assert.equal(report.meta.timing, 'as-recorded')
    assert.equal(report.meta.blockTokens, 128)
    assert.ok(report.meta.idealPrefixHitRate >= report.meta.lruBoundPrefixHitRate)
    assert.ok(report.meta.fleet.cacheDemandPercent > 0)
    // The ceiling: uncached prompt tokens offered a second, at the LRU bound, equal the fleet's
    // prefill rate at `rateScale`.
    const ceiling = report.meta.prefillCeiling
    assert.ok(ceiling.fleetPrefillTokensPerSec > 0)
    assert.ok(
      Math.abs(
        (ceiling.uncachedPromptTokensPerSec * ceiling.rateScale) / report.meta.rateScale -
          ceiling.fleetPrefillTokensPerSec,
      ) <
        1e-6 * ceiling.fleetPrefillTokensPerSec,
    )
    assert.equal(report.runs['round-robin'].valid, true)
    assert.equal(report.runs['round-robin'].promptTokenMismatches, 0)
    const md = await readFile(join(dir, 'report.md'), 'utf8')
    assert.match(md, /\| round-robin \|/)
    const html = await readFile(join(dir, 'report.html'), 'utf8')
    assert.equal((html.match(/<svg /g) ?? []).length, 2 + 2)
    assert.doesNotMatch(html, /<script|<link|https?:\/\/(?!www\.w3\.org)/)
    assert.match(out.stdout, /round-robin\t/)
  })

  it('stops a virtual-time run midway once the signal aborts, exiting 130 without a report', async (t) => {
    const dir = await tempDir(t)
    const interrupt = new AbortController()
    let stderr = ''
    const io = {
      stdout: { write: () => true },
      stderr: {
        write: (s: string) => {
          // The progress bar's first line comes from inside the run: the abort can only land if
          // the run gives the event loop a turn, as a real SIGINT's handler needs.
          if (stderr === '') setImmediate(() => interrupt.abort(new BenchInterrupted('SIGINT')))
          stderr += s
          return true
        },
      },
    }
    const code = await runBenchCommand(desConversationArgs('round-robin', '0:120', dir), io, {
      signal: interrupt.signal,
    })
    assert.equal(code, 130, stderr)
    assert.match(stderr, /stopped by SIGINT; no report written/)
    assert.doesNotMatch(stderr, /100%/, 'the run went on to its end')
    await assert.rejects(access(join(dir, 'report.json')))
  })

  it('sweeps for each policy’s knee in virtual time', async (t) => {
    const dir = await tempDir(t)
    const { out, io } = capture()
    const code = await runBenchCommand(
      [
        'sweep',
        '--trace',
        tracePath(TRACE_FILES.mooncakeConversation),
        '--policies',
        'round-robin,ip-hash',
        '--replicas',
        '2',
        '--profile',
        'h100-llama3-8b',
        '--window',
        '0:90',
        '--length-scale',
        '0.25',
        '--slo-ttft-ms',
        '1000',
        '--rate-scale-min',
        '0.5',
        '--rate-scale-max',
        '16',
        '--precision',
        '10%',
        '--no-progress',
        '--out',
        dir,
      ],
      io,
    )
    assert.equal(code, 0, out.stderr)
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'))
    assert.deepEqual(Object.keys(report).sort(), ['knees', 'meta', 'policies', 'runs', 'sweep'])
    assert.deepEqual(report.meta.sweep, { min: 0.5, max: 16, precision: 0.1 })
    const rr = report.knees['round-robin']
    const one = report.knees['ip-hash']
    assert.ok(rr > 0.5 && rr < 16, `round-robin knee ${rr}`)
    assert.ok(one === null || one < rr, `one replica saturates first: ${one} vs ${rr}`)
    for (const point of report.sweep['round-robin']) {
      assert.deepEqual(Object.keys(point).sort(), ['rateScale', ...POLICY_RESULT_KEYS].sort())
    }
    const below = report.sweep['round-robin'].filter(
      (p: { rateScale: number }) => p.rateScale <= rr,
    )
    assert.ok(below.every((p: { ttftP90Ms: number }) => p.ttftP90Ms <= 1000))
  })
})
