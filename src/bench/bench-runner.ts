import { constants, existsSync } from 'node:fs'
import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { parseProfileList } from '../sim/profiles.ts'
import { stepTimeMs } from '../sim/step-time.ts'
import { ayaBinPath, findPackageRoot } from './aya-paths.ts'
import { type BenchOptions, UsageError } from './bench-options.ts'
import { runDesPolicyInterruptibly } from './des-runner.ts'
import { computeHitRateBounds, type HitRateBounds } from './hit-rate-bounds.ts'
import { type HttpRunEnv, runHttpPolicy } from './http-runner.ts'
import { findKnee, passesSlo } from './knee-search.ts'
import { gitCommit, machineInfo } from './machine-info.ts'
import type { PolicyRunInput, RunProgress } from './policy-run.ts'
import { type PolicyResult, type SloTargets, summarizeRun } from './policy-summary.ts'
import { createPreparedRequests } from './prepared-requests.ts'
import { createProgressBar, type ProgressStream } from './progress-bar.ts'
import { createPromptBuilder } from './prompt-builder.ts'
import { checkReplayTicks } from './replay-ticks.ts'
import { renderHtml } from './report-html.ts'
import { renderMarkdown } from './report-markdown.ts'
import type { BenchReport, PolicySeries, ReportMeta, RunInfo } from './report-types.ts'
import { runInfoOf, seriesOf, toJson } from './run-info.ts'
import type { RunRecord } from './run-record.ts'
import { buildTrace, type LoadedTrace } from './trace-loader.ts'
import { detectTraceFormat, parseTraceRows, TraceParseError } from './trace-parse.ts'

export interface BenchIo {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: ProgressStream
}

export interface BenchDeps {
  /** The built CLI that HTTP runs start (`aya start`, `aya sim`); defaults to this package's dist/. */
  readonly ayaBin?: string
  /**
   * Stops the bench (Ctrl-C): an HTTP run stops its processes at once, a virtual-time run within
   * a few milliseconds; no next run starts, and the bench rejects with the reason.
   */
  readonly signal?: AbortSignal | undefined
}

interface Fleet {
  readonly maxModelLen: number
  readonly kvBlocks: number
  readonly kvBlockTokens: number
  /** Prompt tokens a second the engines prefill at most: each step full of prefill. */
  readonly prefillTokensPerSec: number
}

function fleetOf(options: BenchOptions): Fleet {
  const profiles = parseProfileList(options.profile, options.replicas)
  return {
    maxModelLen: Math.min(...profiles.map((p) => p.maxModelLen)),
    kvBlocks: profiles.reduce((sum, p) => sum + p.numGpuBlocks - 1, 0),
    kvBlockTokens: profiles[0]!.blockSizeTokens,
    prefillTokensPerSec: profiles.reduce((sum, p) => {
      const budget = p.maxNumBatchedTokens
      const stepMs = stepTimeMs(p.stepTime, {
        prefillTokens: budget,
        decodeSeqs: 0,
        decodeContextTokens: 0,
      })
      return sum + (budget / stepMs) * 1000
    }, 0),
  }
}

/**
 * Runs `aya bench` or `aya bench sweep` and writes DIR/report.json, report.md, report.html and
 * series.json. Returns the report.
 */
export async function runBench(
  options: BenchOptions,
  io: BenchIo,
  deps: BenchDeps = {},
): Promise<BenchReport> {
  const text = await readFile(options.trace, 'utf8').catch((error: Error) => {
    throw new UsageError(`cannot read --trace ${options.trace}: ${error.message}`)
  })
  const format = detectTraceFormat(text)
  if (!format) {
    throw new TraceParseError(
      `${options.trace}: not a Mooncake JSONL, Azure CSV or ShareGPT CSV trace`,
    )
  }
  const rows = parseTraceRows(format, text, options.trace)
  const fleet = fleetOf(options)
  const traceAt = (rateScale: number): LoadedTrace =>
    buildTrace(basename(options.trace), format, rows, {
      window: options.window,
      rateScale,
      ratePerSecond: options.rate,
      lengthScale: options.lengthScale,
      spreadBuckets: options.spreadBuckets,
      seed: options.seed,
      maxModelLen: fleet.maxModelLen,
      maxTokens: options.maxTokens,
      limit: options.limit,
    })
  const baseTrace = traceAt(options.rateScale)
  // A sweep's slowest runs are at its lowest rate scale: their arrivals span the longest.
  const slowestRateScale = options.sweep?.min ?? options.rateScale
  checkReplayTicks({
    spanMs: ((baseTrace.requests.at(-1)?.atMs ?? 0) * options.rateScale) / slowestRateScale,
    sampleIntervalMs: options.sampleIntervalMs,
    scrapeIntervalMs: options.scrapeIntervalMs,
    isDes: options.mode === 'des',
  })
  const bounds = computeHitRateBounds(baseTrace.requests, {
    blockTokens: baseTrace.blockTokens,
    kvBlockTokens: fleet.kvBlockTokens,
    capacityBlocks: fleet.kvBlocks,
  })
  await mkdir(options.out, { recursive: true }).catch((error: Error) => {
    throw new UsageError(`cannot create --out ${options.out}: ${error.message}`)
  })
  await checkReportsWritable(options.out)
  const root = findPackageRoot()
  const env: HttpRunEnv = {
    ayaBin: deps.ayaBin ?? ayaBinPath(root),
    workDir: join(options.out, 'configs'),
    signal: deps.signal,
  }
  const needsHttp = options.mode === 'http' || options.confirmHttp
  if (needsHttp) {
    if (!existsSync(env.ayaBin)) {
      // Known before any run, as a bad flag is: one line and exit 2, not a stack trace.
      throw new UsageError(
        `HTTP mode starts ${env.ayaBin}: run 'npm run build' first (or use --mode des)`,
      )
    }
    await mkdir(env.workDir, { recursive: true })
  }

  const profiles = parseProfileList(options.profile, options.replicas)
  const prepared = createPreparedRequests({
    prompts: createPromptBuilder({ seed: options.seed, blockTokens: baseTrace.blockTokens }),
    model: profiles[0]!.modelName,
    maxTokens: baseTrace.maxTokens,
    kvBlockTokens: fleet.kvBlockTokens,
  })

  const runOnce = async (
    policy: string,
    rateScale: number,
    mode: 'http' | 'des',
  ): Promise<RunRecord> => {
    const trace = rateScale === options.rateScale ? baseTrace : traceAt(rateScale)
    const input: PolicyRunInput = {
      trace,
      policy,
      replicas: options.replicas,
      routers: options.routers,
      sharedState: options.sharedState,
      profile: options.profile,
      seed: options.seed,
      scrapeIntervalMs: options.scrapeIntervalMs,
      sampleIntervalMs: options.sampleIntervalMs,
      timeoutMs: options.timeoutMs,
      speedup: options.speedup,
      sloTtftMs: options.sloTtftMs,
      policyOptions: options.policyOptions[policy],
      admission: options.admission,
      prepared,
    }
    // A signal that came between runs stops the bench before the next one starts.
    await new Promise((resolve) => setImmediate(resolve))
    deps.signal?.throwIfAborted()
    const label = `${policy} [${mode}, rate scale ${+rateScale.toPrecision(4)}]`
    const bar = options.showProgress ? createProgressBar(io.stderr, label) : undefined
    const hooks = { onProgress: (p: RunProgress) => bar?.update(p) }
    try {
      const record =
        mode === 'des'
          ? await runDesPolicyInterruptibly(input, hooks, deps.signal)
          : await runHttpPolicy(input, env, hooks)
      // What `--policy-options` changed, so the report says which variant of the policy ran.
      if (input.policyOptions !== undefined) record.diagnostics.policyOptions = input.policyOptions
      if (input.admission !== undefined) record.diagnostics.admissionConfig = input.admission
      return record
    } finally {
      bar?.done()
    }
  }

  const slo = { ttftMs: options.sloTtftMs, itlMs: options.sloItlMs }
  const collected = createCollector(slo)
  const sweepResult =
    options.command === 'run'
      ? await runEachPolicy(options, runOnce, collected)
      : await sweepEachPolicy(options, runOnce, collected)
  const { policies, runs, series } = collected

  const report: BenchReport = {
    meta: buildMeta(
      options,
      baseTrace,
      fleet,
      bounds,
      Object.values(runs).every((r) => r.valid),
    ),
    policies,
    runs,
    ...sweepResult,
  }
  await writeFile(join(options.out, 'report.json'), toJson(report))
  await writeFile(join(options.out, 'series.json'), toJson(series))
  await writeFile(join(options.out, 'report.md'), renderMarkdown(report))
  await writeFile(join(options.out, 'report.html'), renderHtml(report, series))
  return report
}

const REPORT_FILES = ['report.json', 'series.json', 'report.md', 'report.html'] as const

/**
 * Refuses an `--out` the reports could not be written into, before any run: `mkdir -p` accepts
 * an existing directory it cannot write to, and the writes came only after every run (a sweep's
 * hours), failing with a stack trace and leaving some reports written and some not.
 */
async function checkReportsWritable(dir: string): Promise<void> {
  const refuse = (why: string): never => {
    throw new UsageError(`cannot write the reports into --out ${dir}: ${why}`)
  }
  // Creating a file in a directory takes search (x) permission as well as write.
  await access(dir, constants.W_OK | constants.X_OK).catch((error: Error) => refuse(error.message))
  for (const name of REPORT_FILES) {
    const path = join(dir, name)
    const stats = await stat(path).catch(() => undefined)
    if (stats === undefined) continue
    if (!stats.isFile()) refuse(`${path} exists and is not a file`)
    await access(path, constants.W_OK).catch((error: Error) => refuse(error.message))
  }
}

type RunOnce = (policy: string, rateScale: number, mode: 'http' | 'des') => Promise<RunRecord>

interface Collector {
  readonly slo: SloTargets
  readonly policies: Record<string, PolicyResult>
  readonly runs: Record<string, RunInfo>
  readonly series: Record<string, PolicySeries>
  keep(name: string, record: RunRecord): void
}

function createCollector(slo: SloTargets): Collector {
  const policies: Record<string, PolicyResult> = {}
  const runs: Record<string, RunInfo> = {}
  const series: Record<string, PolicySeries> = {}
  return {
    slo,
    policies,
    runs,
    series,
    keep(name, record) {
      policies[name] = summarizeRun(record, slo)
      runs[name] = runInfoOf(record)
      series[name] = seriesOf(record)
    },
  }
}

async function runEachPolicy(
  options: BenchOptions,
  runOnce: RunOnce,
  collected: Collector,
): Promise<Pick<BenchReport, 'knees' | 'sweep' | 'confirm'>> {
  for (const policy of options.policies) {
    collected.keep(policy, await runOnce(policy, options.rateScale, options.mode))
  }
  return {}
}

/**
 * Each policy's knee by bisection over the rate scale; `policies.<name>` holds the run at the
 * knee (at the minimum when even that fails). `--confirm-http` reruns each knee over HTTP.
 */
async function sweepEachPolicy(
  options: BenchOptions,
  runOnce: RunOnce,
  collected: Collector,
): Promise<Pick<BenchReport, 'knees' | 'sweep' | 'confirm'>> {
  const range = options.sweep!
  const knees: Record<string, number | null> = {}
  const sweep: NonNullable<BenchReport['sweep']> = {}
  const confirm: NonNullable<BenchReport['confirm']> = {}
  for (const policy of options.policies) {
    const tried = new Map<number, { result: PolicyResult; record: RunRecord }>()
    const knee = await findKnee(async (rateScale) => {
      const record = await runOnce(policy, rateScale, options.mode)
      const result = summarizeRun(record, collected.slo)
      tried.set(rateScale, { result, record })
      return passesSlo(result, options.sloTtftMs)
    }, range)
    knees[policy] = knee
    sweep[policy] = [...tried.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([rateScale, { result }]) => ({ rateScale, ...result }))
    collected.keep(policy, tried.get(knee ?? range.min)!.record)
    if (options.confirmHttp && knee !== null) {
      const record = await runOnce(policy, knee, 'http')
      confirm[policy] = { rateScale: knee, ...summarizeRun(record, collected.slo) }
      collected.runs[`${policy} (http confirm)`] = runInfoOf(record)
    }
  }
  return { knees, sweep, ...(options.confirmHttp ? { confirm } : {}) }
}

/**
 * The fleet's prefill ceiling (issue 5): the rate scale at which the uncached prompt tokens
 * arriving a second, with the global-LRU bound's hits, equal what the engines prefill a second
 * with every step full of prefill. Past it no policy keeps up, whatever it does with decode.
 */
function prefillCeilingOf(
  options: BenchOptions,
  fleet: Fleet,
  bounds: HitRateBounds,
  arrivalSpanS: number,
): ReportMeta['prefillCeiling'] {
  const uncachedTokens = bounds.promptTokens * (1 - bounds.lruBoundPrefixHitRate)
  if (!(arrivalSpanS > 0) || uncachedTokens <= 0) return null
  const uncachedPromptTokensPerSec = uncachedTokens / arrivalSpanS
  return {
    fleetPrefillTokensPerSec: fleet.prefillTokensPerSec,
    uncachedPromptTokensPerSec,
    rateScale: (options.rateScale * fleet.prefillTokensPerSec) / uncachedPromptTokensPerSec,
  }
}

function buildMeta(
  options: BenchOptions,
  trace: LoadedTrace,
  fleet: Fleet,
  bounds: HitRateBounds,
  valid: boolean,
): ReportMeta {
  const commit = gitCommit(findPackageRoot())
  const kvTokens = fleet.kvBlocks * fleet.kvBlockTokens
  const arrivals = trace.requests.map((r) => r.atMs)
  const arrivalSpanS =
    (arrivals.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY) -
      arrivals.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY)) /
    1000
  return {
    trace: trace.name,
    format: trace.format,
    command: options.command,
    mode: options.mode,
    window: options.window ? { startS: options.window.startS, endS: options.window.endS } : null,
    timing: trace.timing,
    rebase: trace.rebase,
    rateScale: options.rateScale,
    rate: trace.format === 'sharegpt' ? (options.rate ?? null) : null,
    lengthScale: options.lengthScale,
    speedup: options.speedup,
    seed: options.seed,
    requests: trace.requests.length,
    arrivalSpanS,
    maxTokens: trace.maxTokens,
    blockTokens: trace.blockTokens ?? null,
    fleet: {
      replicas: options.replicas,
      routers: options.routers,
      sharedState: options.sharedState,
      profile: options.profile,
      kvBlocks: fleet.kvBlocks,
      kvTokens,
      cacheDemandTokens: bounds.cacheDemandTokens,
      cacheDemandPercent: (100 * bounds.cacheDemandTokens) / kvTokens,
    },
    clipping: trace.clipping,
    slo: { ttftMs: options.sloTtftMs, itlMs: options.sloItlMs },
    scrapeIntervalMs: options.scrapeIntervalMs,
    timeoutMs: options.timeoutMs,
    sweep: options.sweep ?? null,
    commit: commit?.sha ?? null,
    dirty: commit?.dirty ?? null,
    machine: machineInfo(),
    idealPrefixHitRate: bounds.idealPrefixHitRate,
    lruBoundPrefixHitRate: bounds.lruBoundPrefixHitRate,
    prefillCeiling: prefillCeilingOf(options, fleet, bounds, arrivalSpanS),
    valid,
    createdAt: new Date().toISOString(),
  }
}
