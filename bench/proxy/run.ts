// `npm run bench:proxy`: Aya against a bare node:http proxy, nginx and HAProxy, in one interleaved
// run (campaign A of /work/shared/research/general-lbs.md §4). The upstream (nginx `return 200
// "ok"`) and wrk share CPU 0; every proxy is pinned to CPU 1, all on 127.0.0.1. Idle proxies cost
// ~0 CPU, so all run at once and each round hits every target in turn; ratios are taken within a
// round so machine-speed drift cancels out. Proxy CPU is read from /proc/<pid>/stat around each
// wrk run, which gives requests per proxy CPU-second: the fair per-core figure on 2 noisy cores.
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { endRun, makeTempDir, runAsScript, startWatchdog, writeResult } from './bench-script.ts'
import { countLines } from './count-lines.ts'
import { gitInfo } from './git-info.ts'
import { machineInfo } from './machine-info.ts'
import { type Cell, LOAD_CPU, PROXY_CPU } from './measure.ts'
import { measureAll } from './rounds.ts'
import {
  estimateRunS,
  parseRunArgs,
  RUN_USAGE,
  type RunOptions,
  runOptions,
  subset,
} from './run-options.ts'
import {
  type HopSummary,
  perRoundRatio,
  requestsPerCpuS,
  requestsPerSec,
  runsReport,
  summarizeHop,
} from './runs-summary.ts'
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
import { fmtMb, fmtPct, fmtRatio } from './stats.ts'
import { ensureTools, peakRssKb } from './system.ts'
import { type Column, renderColumns, runColumns } from './table-columns.ts'

const TARGETS = ['direct', 'nginx', 'haproxy', 'node-http', 'aya'] as const
type TargetName = (typeof TARGETS)[number]

export interface Options extends RunOptions {
  readonly accessLog: 'file' | 'devnull'
  readonly targets: readonly TargetName[]
}

const USAGE = `usage: npm run bench:proxy -- [options]
${RUN_USAGE}  --access-log MODE    file (default: Aya's stdout to a file in the temp dir) or devnull
  --targets LIST       comma-separated subset of ${TARGETS.join(',')}
  --out FILE           JSON result (default bench-out/proxy.json)
`

export function parseOptions(argv: string[]): Options {
  const values = parseRunArgs(argv, USAGE, 'bench-out/proxy.json', {
    'access-log': { type: 'string', default: 'file' },
    targets: { type: 'string', default: TARGETS.join(',') },
  })
  const accessLog = values['access-log']
  if (accessLog !== 'file' && accessLog !== 'devnull') {
    throw new Error('--access-log: expected file or devnull')
  }
  return {
    ...runOptions(values),
    accessLog,
    targets: subset('targets', values.targets, TARGETS),
  }
}

interface Target extends Cell {
  readonly name: TargetName
}

const log = (line: string) => process.stderr.write(`bench:proxy: ${line}\n`)

export interface Summary extends HopSummary {
  readonly name: TargetName
  readonly description: string
  readonly failure?: string
  readonly peakRssKb: number | undefined
  /** Per-round ratios, median'd. */
  readonly ratios: {
    readonly requestsPerCpuSVsNginx: number | undefined
    readonly requestsPerCpuSVsNodeHttp: number | undefined
    readonly requestsPerSecVsNginx: number | undefined
    readonly requestsPerSecVsNodeHttp: number | undefined
  }
}

function summarize(target: Target, all: readonly Target[]): Summary {
  const find = (name: TargetName) => all.find((t) => t.name === name && !t.failure)
  const nginx = find('nginx')?.c50
  const node = find('node-http')?.c50
  return {
    name: target.name,
    description: target.server.description,
    ...(target.failure ? { failure: target.failure } : {}),
    peakRssKb: peakRssKb(target.server.proc.pid),
    ...summarizeHop(target, find('direct')),
    ratios: {
      requestsPerCpuSVsNginx: perRoundRatio(target.c50, nginx, requestsPerCpuS),
      requestsPerCpuSVsNodeHttp: perRoundRatio(target.c50, node, requestsPerCpuS),
      requestsPerSecVsNginx: perRoundRatio(target.c50, nginx, requestsPerSec),
      requestsPerSecVsNodeHttp: perRoundRatio(target.c50, node, requestsPerSec),
    },
  }
}

export function renderTable(summaries: readonly Summary[], connections: number): string {
  const c = runColumns(connections)
  const column = (header: string, cell: (s: Summary) => string): Column<Summary> => ({
    header,
    cell,
  })
  return renderColumns(summaries, [
    c.target,
    c.requestsPerSec,
    column('proxy CPU', (s) => fmtPct(s.c50.proxyCpu)),
    c.requestsPerCpuS,
    c.requestsPerCpuSRange,
    column('vs nginx', (s) => fmtRatio(s.ratios.requestsPerCpuSVsNginx)),
    column('vs node-http', (s) => fmtRatio(s.ratios.requestsPerCpuSVsNodeHttp)),
    c.p50,
    c.p99,
    c.p50C1,
    c.addedP50C1,
    column('peak RSS', (s) => fmtMb(s.peakRssKb)),
  ])
}

export async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv)
  if (!existsSync(AYA_CLI)) throw new Error(`${AYA_CLI} is missing: run \`npm run build\` first`)
  ensureTools(log)
  const n = options.targets.length
  const estimateS = estimateRunS(options, n)
  const watchdog = startWatchdog({ ...options, estimateS }, log)
  const dir = makeTempDir('aya-bench-proxy-', options.keepTmp)
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
        const url = `http://127.0.0.1:${server.port}/`
        targets.push({ name, server, url, c50: [], c1: [], warmup: [], requestsSent: 0 })
        log(`${name}: pid ${server.proc.pid} on 127.0.0.1:${server.port}`)
      } catch (error) {
        if (!(error instanceof StartError)) throw error
        failures.push(error.message)
        log(`FAILED to start: ${error.message}`)
      }
    }
    if (targets.length === 0) throw new Error('no target started')

    const waitedS = await measureAll([{ cells: targets }], upstream, options, log)

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
    process.stdout.write(runsReport(summaries, options.connections, waitedS))
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
    const out = writeResult(options.out, result)
    log(`wrote ${out}`)
    return failures.length > 0 ? 1 : 0
  } finally {
    await endRun(watchdog, dir, options.keepTmp, log)
  }
}

// Run only as a script, so that the helpers can be imported.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runAsScript('bench:proxy', main)
