// `npm run bench:proxy`: Aya against a bare node:http proxy, nginx and HAProxy, in one interleaved
// run (campaign A of /work/shared/research/general-lbs.md §4). The upstream (nginx `return 200
// "ok"`) and wrk share CPU 0; every proxy is pinned to CPU 1, all on 127.0.0.1. Idle proxies cost
// ~0 CPU, so all run at once and each round hits every target in turn; ratios are taken within a
// round so machine-speed drift cancels out. Proxy CPU is read from /proc/<pid>/stat around each
// wrk run, which gives requests per proxy CPU-second: the fair per-core figure on 2 noisy cores.
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import {
  AYA_CLI,
  ayaRequestsTotal,
  type Server,
  StartError,
  startAya,
  startHaproxy,
  startNginxOk,
  startNginxProxy,
  startNodeHttp,
} from './servers.ts'
import {
  defined,
  fmtAddedMs,
  fmtInt,
  fmtMs,
  fmtPct,
  fmtRange,
  fmtRatio,
  markdownTable,
  median,
  range,
} from './stats.ts'
import {
  CLK_TCK,
  coreTicks,
  cpuTicks,
  ensureTools,
  exec,
  firstLine,
  isAlive,
  killAllNow,
  machineBusy,
  peakRssKb,
  stopAll,
  tail,
} from './system.ts'
import { runWrk, type WrkResult } from './wrk.ts'

const LOAD_CPU = 0
const PROXY_CPU = 1
const TARGETS = ['direct', 'nginx', 'haproxy', 'node-http', 'aya'] as const
type TargetName = (typeof TARGETS)[number]

export interface Options {
  readonly rounds: number
  readonly durationS: number
  readonly c1Rounds: number
  readonly c1DurationS: number
  readonly warmupS: number
  readonly connections: number
  readonly out: string
  readonly accessLog: 'file' | 'devnull'
  readonly targets: readonly TargetName[]
  readonly keepTmp: boolean
  /** A run is redone when something else used more than this share of the proxy CPU. */
  readonly maxOther: number
  readonly retries: number
  /** Total seconds the run may spend waiting for other load on the machine to stop. */
  readonly maxWaitS: number
}

const USAGE = `usage: npm run bench:proxy -- [options]
  --rounds N           c=50 rounds (default 5)
  --duration-s S       seconds per c=50 wrk run (default 5)
  --c1-rounds N        c=1 latency rounds (default 3)
  --c1-duration-s S    seconds per c=1 wrk run (default 3)
  --warmup-s S         c=50 warm-up per target before the rounds (default 3)
  --connections N      wrk connections for the throughput rounds (default 50)
  --access-log MODE    file (default: Aya's stdout to a file in the temp dir) or devnull
  --targets LIST       comma-separated subset of ${TARGETS.join(',')}
  --out FILE           JSON result (default bench-out/proxy.json)
  --keep-tmp           keep the temp dir (configs, server logs, Aya's access log)
  --max-other F        redo a run when other processes used more than this share of CPU 1
                       (default 0.1); before each run, wait for the machine to be <10% busy
  --retries N          redos per run at most (default 3); the last try is kept, flagged
  --max-wait-s S       total time to wait for a quiet machine (default 300)
`

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rounds: { type: 'string', default: '5' },
      'duration-s': { type: 'string', default: '5' },
      'c1-rounds': { type: 'string', default: '3' },
      'c1-duration-s': { type: 'string', default: '3' },
      'warmup-s': { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      'access-log': { type: 'string', default: 'file' },
      targets: { type: 'string', default: TARGETS.join(',') },
      out: { type: 'string', default: 'bench-out/proxy.json' },
      'keep-tmp': { type: 'boolean', default: false },
      'max-other': { type: 'string', default: '0.1' },
      retries: { type: 'string', default: '3' },
      'max-wait-s': { type: 'string', default: '300' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    process.exit(0)
  }
  const int = (flag: string, text: string, min: number) => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: expected an integer ≥ ${min}`)
    return n
  }
  const targets = values.targets.split(',').map((t) => t.trim())
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`--targets: unknown "${t}"`)
  }
  const maxOther = Number(values['max-other'])
  if (!(maxOther >= 0 && maxOther <= 1)) throw new Error('--max-other: expected a share in [0, 1]')
  if (values['access-log'] !== 'file' && values['access-log'] !== 'devnull') {
    throw new Error('--access-log: expected file or devnull')
  }
  return {
    rounds: int('rounds', values.rounds, 1),
    durationS: int('duration-s', values['duration-s'], 1),
    c1Rounds: int('c1-rounds', values['c1-rounds'], 0),
    c1DurationS: int('c1-duration-s', values['c1-duration-s'], 1),
    warmupS: int('warmup-s', values['warmup-s'], 0),
    connections: int('connections', values.connections, 1),
    accessLog: values['access-log'],
    // Keep the canonical order whatever order was given.
    targets: TARGETS.filter((t) => targets.includes(t)),
    out: values.out,
    keepTmp: values['keep-tmp'],
    maxOther,
    retries: int('retries', values.retries, 0),
    maxWaitS: int('max-wait-s', values['max-wait-s'], 0),
  }
}

/** One wrk run against one target, with the proxy's and the upstream's CPU over the same window. */
export interface Sample {
  readonly round: number
  /** Position of this target within its round (the order rotates each round). */
  readonly position: number
  readonly wallS: number
  readonly proxyCpuS: number
  /** Fraction of one core the proxy used over the run. */
  readonly proxyCpu: number
  /** Fraction of CPU 0 the upstream used (wrk shares that core). */
  readonly upstreamCpu: number
  /**
   * Busy time on the proxy's CPU not spent by the proxy (other processes, interrupts), as a
   * fraction of the run: a noise indicator, ~0 on a quiet machine.
   */
  readonly otherOnProxyCpu: number
  /** Hypervisor steal on the proxy's CPU, as a fraction of the run. */
  readonly stealOnProxyCpu: number
  readonly requestsPerCpuS: number | undefined
  /** 1 + the runs thrown away because other load on CPU 1 went over --max-other. */
  readonly attempts: number
  /** Still over --max-other after every retry (kept, but suspect). */
  readonly contaminated: boolean
  readonly wrk: WrkResult
}

interface Target {
  readonly name: TargetName
  readonly server: Server
  readonly c50: Sample[]
  readonly c1: Sample[]
  readonly warmup: Sample[]
  /** Requests wrk completed against this target in every run, redone ones included. */
  requestsSent: number
  failure?: string
}

const log = (line: string) => process.stderr.write(`bench:proxy: ${line}\n`)

/** The temp dir to remove on the way out, also when stopped by a signal. */
const cleanup: { tempDir?: string; stopping?: boolean } = {}

function removeTempDir(): void {
  if (cleanup.tempDir) rmSync(cleanup.tempDir, { recursive: true, force: true })
  delete cleanup.tempDir
}

async function measure(
  target: Target,
  upstream: Server,
  connections: number,
  durationS: number,
  round: number,
  position: number,
): Promise<Sample | undefined> {
  const { proc } = target.server
  if (target.failure) return undefined
  if (proc.exited || !isAlive(proc.pid)) {
    target.failure = `${target.name} (pid ${proc.pid}) exited during the run\n${tail(proc.stderrPath)}`
    return undefined
  }
  const url = `http://127.0.0.1:${target.server.port}/`
  const p0 = cpuTicks(proc.pid)
  const u0 = cpuTicks(upstream.proc.pid)
  const c0 = coreTicks(PROXY_CPU)
  const t0 = performance.now()
  let wrk: WrkResult
  try {
    wrk = (await runWrk({ url, connections, durationS, cpu: LOAD_CPU })).result
  } catch (error) {
    target.failure = `${target.name}: wrk failed: ${(error as Error).message}`
    return undefined
  }
  target.requestsSent += wrk.requests
  const wallS = (performance.now() - t0) / 1000
  const proxyCpuS = (cpuTicks(proc.pid) - p0) / CLK_TCK
  const upstreamCpuS = (cpuTicks(upstream.proc.pid) - u0) / CLK_TCK
  const c1 = coreTicks(PROXY_CPU)
  const coreBusyS = (c1.busy - c0.busy) / CLK_TCK
  return {
    round,
    position,
    wallS,
    proxyCpuS,
    proxyCpu: proxyCpuS / wallS,
    upstreamCpu: upstreamCpuS / wallS,
    otherOnProxyCpu: Math.max(0, coreBusyS - proxyCpuS) / wallS,
    stealOnProxyCpu: (c1.steal - c0.steal) / CLK_TCK / wallS,
    requestsPerCpuS: proxyCpuS > 0 ? wrk.requests / proxyCpuS : undefined,
    attempts: 1,
    contaminated: false,
    wrk,
  }
}

/** Seconds left for waiting on other load, shared by the whole run. */
const waitBudget = { leftS: 0 }

/** Waits (within the shared budget) until the whole machine is under 10% busy for a second. */
async function waitForQuiet(): Promise<void> {
  let announced = false
  while (waitBudget.leftS > 0) {
    const started = performance.now()
    const busy = await machineBusy(1000)
    if (busy < 0.1) return
    if (!announced) log(`machine ${fmtPct(busy)} busy with other work: waiting`)
    announced = true
    waitBudget.leftS -= (performance.now() - started) / 1000
  }
}

/** `measure`, redone while something else ate more than `maxOther` of the proxy CPU. */
async function measureClean(
  target: Target,
  upstream: Server,
  options: Options,
  connections: number,
  durationS: number,
  round: number,
  position: number,
): Promise<Sample | undefined> {
  for (let attempt = 1; ; attempt++) {
    await waitForQuiet()
    const sample = await measure(target, upstream, connections, durationS, round, position)
    if (!sample) return undefined
    const other = sample.otherOnProxyCpu + sample.stealOnProxyCpu
    if (other <= options.maxOther) return { ...sample, attempts: attempt }
    if (attempt > options.retries) return { ...sample, attempts: attempt, contaminated: true }
    log(`${target.name}: other load took ${fmtPct(other)} of CPU 1 during the run: redoing it`)
  }
}

/** Every round hits every live target once; the starting target rotates each round. */
async function rounds(
  targets: readonly Target[],
  upstream: Server,
  options: Options,
  phase: 'c50' | 'c1',
  count: number,
  connections: number,
  durationS: number,
): Promise<void> {
  for (let round = 0; round < count; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!)
    const parts: string[] = []
    for (const [position, target] of order.entries()) {
      const sample = await measureClean(
        target,
        upstream,
        options,
        connections,
        durationS,
        round,
        position,
      )
      if (!sample) continue
      target[phase].push(sample)
      const perCpu = sample.requestsPerCpuS
      parts.push(
        `${target.name} ${fmtInt(sample.wrk.requestsPerSec)}/s` +
          (phase === 'c50' ? ` ${fmtInt(perCpu)}/cpu-s` : ` p50 ${fmtMs(sample.wrk.p50Ms)}`) +
          (sample.otherOnProxyCpu + sample.stealOnProxyCpu > 0.05
            ? ` (CPU 1 other ${fmtPct(sample.otherOnProxyCpu)}, steal ${fmtPct(sample.stealOnProxyCpu)})`
            : ''),
      )
    }
    log(`${phase} round ${round + 1}/${count}: ${parts.join(', ')}`)
  }
}

/** Per-round ratio of a metric between two targets, then the median over rounds. */
function ratio(
  target: Target,
  base: Target | undefined,
  pick: (s: Sample) => number | undefined,
): number | undefined {
  if (!base) return undefined
  const values: number[] = []
  for (const sample of target.c50) {
    const other = base.c50.find((s) => s.round === sample.round)
    const a = pick(sample)
    const b = other && pick(other)
    if (a !== undefined && b !== undefined && b > 0) values.push(a / b)
  }
  return median(values)
}

export interface Summary {
  readonly name: TargetName
  readonly description: string
  readonly failure?: string
  readonly peakRssKb: number | undefined
  readonly c50: {
    readonly rounds: number
    readonly requestsPerSec: number | undefined
    readonly requestsPerSecRange: [number, number] | undefined
    readonly proxyCpu: number | undefined
    readonly upstreamCpu: number | undefined
    /** Worst run's share of the proxy CPU used by something else (see Sample). */
    readonly maxOtherOnProxyCpu: number | undefined
    readonly maxStealOnProxyCpu: number | undefined
    readonly requestsPerCpuS: number | undefined
    readonly requestsPerCpuSRange: [number, number] | undefined
    readonly p50Ms: number | undefined
    readonly p99Ms: number | undefined
  }
  readonly c1: {
    readonly rounds: number
    readonly requestsPerSec: number | undefined
    readonly p50Ms: number | undefined
    readonly p99Ms: number | undefined
    /** Median over rounds of (p50 − direct's p50 in the same round). */
    readonly addedP50Ms: number | undefined
  }
  /** Per-round ratios, median'd. */
  readonly ratios: {
    readonly requestsPerCpuSVsNginx: number | undefined
    readonly requestsPerCpuSVsNodeHttp: number | undefined
    readonly requestsPerSecVsNginx: number | undefined
    readonly requestsPerSecVsNodeHttp: number | undefined
  }
  readonly errors: { readonly socket: number; readonly non2xx3xx: number }
  /** Runs redone for other load, and runs kept although still over --max-other. */
  readonly noise: { readonly redone: number; readonly contaminated: number }
}

function summarize(target: Target, all: readonly Target[]): Summary {
  const find = (name: TargetName) => all.find((t) => t.name === name && !t.failure)
  const nginx = find('nginx')
  const node = find('node-http')
  const direct = find('direct')
  const c50 = target.c50
  const c1 = target.c1
  const added = defined(
    c1.map((s) => {
      const d = direct?.c1.find((x) => x.round === s.round)
      return s.wrk.p50Ms !== undefined && d?.wrk.p50Ms !== undefined
        ? s.wrk.p50Ms - d.wrk.p50Ms
        : undefined
    }),
  )
  const perCpu = defined(c50.map((s) => s.requestsPerCpuS))
  const rps = (s: Sample) => s.wrk.requestsPerSec
  const perCpuOf = (s: Sample) => s.requestsPerCpuS
  const all50and1 = [...c50, ...c1]
  return {
    name: target.name,
    description: target.server.description,
    ...(target.failure ? { failure: target.failure } : {}),
    peakRssKb: peakRssKb(target.server.proc.pid),
    c50: {
      rounds: c50.length,
      requestsPerSec: median(c50.map(rps)),
      requestsPerSecRange: range(c50.map(rps)),
      proxyCpu: median(c50.map((s) => s.proxyCpu)),
      upstreamCpu: median(c50.map((s) => s.upstreamCpu)),
      maxOtherOnProxyCpu: range(c50.map((s) => s.otherOnProxyCpu))?.[1],
      maxStealOnProxyCpu: range(c50.map((s) => s.stealOnProxyCpu))?.[1],
      requestsPerCpuS: median(perCpu),
      requestsPerCpuSRange: range(perCpu),
      p50Ms: median(defined(c50.map((s) => s.wrk.p50Ms))),
      p99Ms: median(defined(c50.map((s) => s.wrk.p99Ms))),
    },
    c1: {
      rounds: c1.length,
      requestsPerSec: median(c1.map(rps)),
      p50Ms: median(defined(c1.map((s) => s.wrk.p50Ms))),
      p99Ms: median(defined(c1.map((s) => s.wrk.p99Ms))),
      addedP50Ms: target.name === 'direct' ? undefined : median(added),
    },
    ratios: {
      requestsPerCpuSVsNginx: ratio(target, nginx, perCpuOf),
      requestsPerCpuSVsNodeHttp: ratio(target, node, perCpuOf),
      requestsPerSecVsNginx: ratio(target, nginx, rps),
      requestsPerSecVsNodeHttp: ratio(target, node, rps),
    },
    errors: {
      socket: all50and1.reduce((n, s) => n + s.wrk.socketErrors, 0),
      non2xx3xx: all50and1.reduce((n, s) => n + s.wrk.non2xx3xx, 0),
    },
    noise: {
      redone: all50and1.reduce((n, s) => n + s.attempts - 1, 0),
      contaminated: all50and1.filter((s) => s.contaminated).length,
    },
  }
}

export function renderTable(summaries: readonly Summary[], connections: number): string {
  const header = [
    'Target (CPU 1)',
    'req/s',
    'proxy CPU',
    '**req per CPU-s**',
    '[min–max]',
    'vs nginx',
    'vs node-http',
    `p50 c=${connections}`,
    `p99 c=${connections}`,
    'p50 c=1',
    'added p50 c=1',
    'peak RSS',
  ]
  const rows = summaries.map((s) => [
    s.failure
      ? `${s.name} (FAILED)`
      : s.noise.contaminated > 0
        ? `${s.name} (${s.noise.contaminated} noisy runs kept)`
        : s.name,
    fmtInt(s.c50.requestsPerSec),
    fmtPct(s.c50.proxyCpu),
    `**${fmtInt(s.c50.requestsPerCpuS)}**`,
    fmtRange(s.c50.requestsPerCpuSRange),
    fmtRatio(s.ratios.requestsPerCpuSVsNginx),
    fmtRatio(s.ratios.requestsPerCpuSVsNodeHttp),
    fmtMs(s.c50.p50Ms),
    fmtMs(s.c50.p99Ms),
    fmtMs(s.c1.p50Ms),
    s.name === 'direct' ? '—' : fmtAddedMs(s.c1.addedP50Ms),
    s.peakRssKb === undefined ? '–' : `${(s.peakRssKb / 1024).toFixed(0)} MB`,
  ])
  return markdownTable(header, rows)
}

function machineInfo() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  return {
    nproc: Number(firstLine('nproc', [])),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model,
    kernel: release(),
    memTotalMb: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    nginx: firstLine('nginx', ['-v']),
    haproxy: firstLine('haproxy', ['-v']),
    wrk: firstLine('wrk', ['-v']),
    clkTck: CLK_TCK,
    loadavgAtStart: loadavg(),
  }
}

async function countLines(path: string): Promise<number> {
  let lines = 0
  for await (const chunk of createReadStream(path)) {
    for (const byte of chunk as Buffer) if (byte === 10) lines++
  }
  return lines
}

/**
 * The commit measured. BENCH_COMMIT names it when the run is made from an export of a commit
 * (`git archive`), which has no .git, e.g. while others have uncommitted changes in the checkout.
 */
async function gitInfo() {
  const exported = process.env.BENCH_COMMIT
  if (exported)
    return { commit: exported, srcDirty: false, from: 'BENCH_COMMIT (git archive export)' }
  const head = await exec('git', ['rev-parse', '--short', 'HEAD'])
  // GIT_OPTIONAL_LOCKS=0 keeps `git status` from refreshing the index (no git state changes).
  process.env.GIT_OPTIONAL_LOCKS = '0'
  const status = await exec('git', ['status', '--porcelain', '--untracked-files=no', 'src', 'bin'])
  return {
    commit: head.code === 0 ? head.stdout.trim() : undefined,
    srcDirty: status.code === 0 ? status.stdout.trim() !== '' : undefined,
  }
}

export async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv)
  if (!existsSync(AYA_CLI)) throw new Error(`${AYA_CLI} is missing: run \`npm run build\` first`)
  ensureTools(log)
  const n = options.targets.length
  const estimateS =
    n *
    (options.warmupS +
      options.rounds * (options.durationS + 0.5) +
      options.c1Rounds * (options.c1DurationS + 0.5))
  // A backstop only: every redo and every wait for a quiet machine is bounded on its own.
  const budgetS = Math.ceil(estimateS * (1.5 + options.retries) + options.maxWaitS + 120)
  const watchdog = setTimeout(() => {
    log(`still running after ${budgetS} s: stopping everything`)
    killAllNow()
    removeTempDir()
    process.exit(3)
  }, budgetS * 1000)
  watchdog.unref()

  const dir = mkdtempSync(join(tmpdir(), 'aya-bench-proxy-'))
  if (!options.keepTmp) cleanup.tempDir = dir
  const accessLog = options.accessLog === 'file' ? join(dir, 'aya-access.log') : '/dev/null'
  const startedAt = new Date()
  const machine = machineInfo()
  const git = await gitInfo()
  log(
    `${n} targets, ${options.rounds}×${options.durationS}s at c=${options.connections}, ` +
      `${options.c1Rounds}×${options.c1DurationS}s at c=1, about ${Math.round(estimateS)} s; temp dir ${dir}`,
  )
  const failures: string[] = []
  const targets: Target[] = []
  try {
    const upstream = await startNginxOk(dir, 'upstream', LOAD_CPU, 'upstream nginx (CPU 0)')
    const starters: Record<TargetName, () => Promise<Server>> = {
      direct: () => startNginxOk(dir, 'direct', PROXY_CPU, 'upstream nginx alone (direct)'),
      nginx: () => startNginxProxy(dir, PROXY_CPU, upstream.port),
      haproxy: () => startHaproxy(dir, PROXY_CPU, upstream.port),
      'node-http': () => startNodeHttp(dir, PROXY_CPU, upstream.port),
      aya: () => startAya({ dir, cpu: PROXY_CPU, upstreamPort: upstream.port, accessLog }),
    }
    for (const name of options.targets) {
      try {
        const server = await starters[name]()
        targets.push({ name, server, c50: [], c1: [], warmup: [], requestsSent: 0 })
        log(`${name}: pid ${server.proc.pid} on 127.0.0.1:${server.port}`)
      } catch (error) {
        if (!(error instanceof StartError)) throw error
        failures.push(error.message)
        log(`FAILED to start: ${error.message}`)
      }
    }
    if (targets.length === 0) throw new Error('no target started')

    if (options.warmupS > 0) {
      for (const target of targets) {
        const sample = await measure(target, upstream, options.connections, options.warmupS, -1, 0)
        if (sample) target.warmup.push(sample)
      }
      log('warm-up done')
    }
    waitBudget.leftS = options.maxWaitS
    const { connections } = options
    await rounds(targets, upstream, options, 'c50', options.rounds, connections, options.durationS)
    await rounds(targets, upstream, options, 'c1', options.c1Rounds, 1, options.c1DurationS)

    const summaries = targets.map((t) => summarize(t, targets))
    for (const t of targets) if (t.failure) failures.push(t.failure)

    const aya = targets.find((t) => t.name === 'aya')
    const ayaChecks = aya?.server.adminPort
      ? {
          accessLog: options.accessLog === 'file' ? accessLog : '/dev/null (stdout redirect)',
          accessLogLines: options.accessLog === 'file' ? await countLines(accessLog) : undefined,
          metricsRequestsTotal: await ayaRequestsTotal(aya.server.adminPort),
          // wrk counts only requests completed inside its window; Aya also served the readiness GET.
          wrkRequestsCompleted: aya.requestsSent,
        }
      : undefined

    const table = renderTable(summaries, options.connections)
    const command = `npm run bench:proxy${argv.length ? ` -- ${argv.join(' ')}` : ''}`
    process.stdout.write(
      `\n${table}\n\nreq per CPU-s = completed requests ÷ proxy CPU seconds (utime+stime) over the` +
        ` same wrk run; ratios are per round, then median'd. Added p50 at c=1 is against "direct"` +
        ` in the same round.\n`,
    )
    if (ayaChecks) process.stdout.write(`aya checks: ${JSON.stringify(ayaChecks)}\n`)
    const errors = summaries.filter((s) => s.errors.socket + s.errors.non2xx3xx > 0)
    for (const s of errors) {
      process.stdout.write(
        `WARNING ${s.name}: ${s.errors.socket} socket errors, ${s.errors.non2xx3xx} non-2xx/3xx\n`,
      )
    }
    const noise = summaries
      .map(
        (s) => `${s.name} ${fmtPct(s.c50.maxOtherOnProxyCpu)}/${fmtPct(s.c50.maxStealOnProxyCpu)}`,
      )
      .join(', ')
    process.stdout.write(`noise, worst c=${options.connections} run, CPU 1 other/steal: ${noise}\n`)
    const redone = summaries.map((s) => `${s.name} ${s.noise.redone}/${s.noise.contaminated}`)
    process.stdout.write(
      `runs redone for other load / kept though over --max-other: ${redone.join(', ')}; ` +
        `waited ${Math.round(options.maxWaitS - Math.max(0, waitBudget.leftS))} s for a quiet machine\n`,
    )
    for (const f of failures) process.stdout.write(`FAILED ${f}\n`)

    const result = {
      benchmark: 'bench:proxy',
      date: startedAt.toISOString(),
      durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
      command,
      git,
      machine: { ...machine, loadavgAtEnd: loadavg() },
      settings: {
        ...options,
        loadCpu: LOAD_CPU,
        proxyCpu: PROXY_CPU,
        accessLog: options.accessLog === 'file' ? 'file in the temp dir' : '/dev/null',
      },
      table,
      summaries,
      aya: ayaChecks,
      failures,
      samples: Object.fromEntries(
        targets.map((t) => [t.name, { warmup: t.warmup, c50: t.c50, c1: t.c1 }]),
      ),
    }
    const out = resolve(options.out)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
    log(`wrote ${out}`)
    return failures.length > 0 ? 1 : 0
  } finally {
    await stopAll()
    clearTimeout(watchdog)
    if (options.keepTmp) log(`kept ${dir}`)
    else removeTempDir()
  }
}

// Run only as a script, so that the helpers can be imported.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.on('exit', killAllNow)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping everything`)
      cleanup.stopping = true
      void stopAll().finally(() => {
        removeTempDir()
        process.exit(130)
      })
    })
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      killAllNow()
      // A run cut short by a signal fails where it stood; the signal handler reports and exits.
      if (cleanup.stopping) return
      process.stderr.write(
        `bench:proxy: ${error instanceof Error ? error.message : String(error)}\n`,
      )
      process.exitCode = 2
    },
  )
}
