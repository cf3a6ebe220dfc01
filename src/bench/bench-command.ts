import { BenchInterrupted } from './bench-interrupted.ts'
import { BENCH_USAGE, type BenchOptions, parseBenchArgs, UsageError } from './bench-options.ts'
import { type BenchDeps, type BenchIo, runBench } from './bench-runner.ts'
import { formatKnee, formatMetric, formatPercent } from './report-format.ts'
import { RunProcessDied } from './run-guard.ts'
import { TraceOptionsError } from './trace-loader.ts'
import { TraceParseError } from './trace-parse.ts'

/**
 * `aya bench ...` and `aya bench sweep ...`. Returns the exit code: 0 when the reports were
 * written (invalid runs are flagged in them and on stderr), 2 for bad flags, an unusable or
 * unreadable trace or an --out that cannot be created or written into, 1 when a run failed, 128 + the signal's
 * number when `deps.signal` aborted with a `BenchInterrupted` (130 for Ctrl-C).
 */
export async function runBenchCommand(
  argv: string[],
  io: BenchIo,
  deps: BenchDeps = {},
): Promise<number> {
  let options: BenchOptions | 'help'
  try {
    options = parseBenchArgs(argv)
  } catch (error) {
    const isUsage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    if (!isUsage) throw error
    io.stderr.write(`aya bench: ${(error as Error).message}\n\n${BENCH_USAGE}`)
    return 2
  }
  if (options === 'help') {
    io.stdout.write(BENCH_USAGE)
    return 0
  }
  try {
    const report = await runBench(options, io, deps)
    for (const [name, run] of Object.entries(report.runs)) {
      if (!run.valid) io.stderr.write(`aya bench: INVALID run ${name}: ${run.invalidReason}\n`)
    }
    io.stdout.write(`policy\tTTFT p50/p90 ms\tfailed\thit rate\t${report.knees ? 'knee' : ''}\n`)
    for (const [name, r] of Object.entries(report.policies)) {
      const knee = report.knees ? `\t${formatKnee(report.knees[name], report.meta.sweep)}` : ''
      io.stdout.write(
        `${name}\t${formatMetric(r.ttftP50Ms)}/${formatMetric(r.ttftP90Ms)}\t${r.failed}\t${formatPercent(r.prefixHitRate)}${knee}\n`,
      )
    }
    io.stdout.write(`wrote ${options.out}/report.json, report.md, report.html\n`)
    return 0
  } catch (error) {
    if (error instanceof BenchInterrupted) {
      io.stderr.write(`aya bench: ${error.message}; no report written\n`)
      return error.exitCode
    }
    if (error instanceof RunProcessDied) {
      io.stderr.write(`aya bench: ${error.message}\n`)
      return 1
    }
    if (
      error instanceof TraceParseError ||
      error instanceof TraceOptionsError ||
      error instanceof UsageError
    ) {
      io.stderr.write(`aya bench: ${error.message}\n`)
      return 2
    }
    io.stderr.write(`aya bench: ${(error as Error).stack ?? String(error)}\n`)
    return 1
  }
}
