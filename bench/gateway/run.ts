// `npm run bench:gateway`: Aya as an OpenAI-compatible LLM gateway against the
// `@portkey-ai/gateway` npm package, with a bare node:http proxy and nginx as references, in one
// interleaved run. The method is bench:proxy's (bench/proxy/run.ts): the upstream (nginx with
// fixed chat.completion answers) and wrk share CPU 0, every target is pinned to CPU 1, and each
// target's CPU is read from /proc around each wrk run. Each workload (a short chat completion,
// the same streamed, a 32 kB prompt) hits every target in turn, round after round, and ratios are
// taken within a round.
import { existsSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import {
  endRun,
  makeTempDir,
  runAsScript,
  startWatchdog,
  writeResult,
} from '../proxy/bench-script.ts'
import { gitInfo } from '../proxy/git-info.ts'
import { machineInfo } from '../proxy/machine-info.ts'
import { LOAD_CPU, PROXY_CPU } from '../proxy/measure.ts'
import { measureAll } from '../proxy/rounds.ts'
import {
  estimateRunS,
  intOption,
  parseRunArgs,
  RUN_USAGE,
  type RunOptions,
  runOptions,
  subset,
} from '../proxy/run-options.ts'
import { runsReport } from '../proxy/runs-summary.ts'
import { AYA_CLI, startNginx } from '../proxy/servers.ts'
import { ensureTools, peakRssKb } from '../proxy/system.ts'
import { MODEL } from './answers.ts'
import { answersEveryRequest } from './answers-probe.ts'
import { ayaChecks } from './aya-checks.ts'
import { cellsFor } from './cells.ts'
import { llmUpstreamConf } from './configs.ts'
import { DEFAULT_PORTKEY_DIR, ensurePortkey, type PortkeyInstall } from './portkey.ts'
import { type CellSummary, renderServers, renderTable, summarizeCell } from './report.ts'
import { startTargets } from './start-targets.ts'
import { headersFor, TARGETS, type TargetName } from './targets.ts'
import { WORKLOADS, type WorkloadName, workload } from './workloads.ts'

export interface Options extends RunOptions {
  /** wrk's wait for one response; past it a request counts as a timeout, not in the latencies. */
  readonly timeoutS: number
  readonly targets: readonly TargetName[]
  readonly workloads: readonly WorkloadName[]
  readonly portkeyDir: string
}

const USAGE = `usage: npm run bench:gateway -- [options]
${RUN_USAGE}  --timeout-s S        wrk's wait for one response (default 10; wrk's own is 2)
  --targets LIST       comma-separated subset of ${TARGETS.join(',')}
  --workloads LIST     comma-separated subset of ${WORKLOADS.join(',')}
  --portkey-dir DIR    where the pinned @portkey-ai/gateway is installed on first use
                       (default ${DEFAULT_PORTKEY_DIR})
  --out FILE           JSON result (default bench-out/gateway.json; the tables go next to it, .md)
`

export function parseOptions(argv: string[]): Options {
  const values = parseRunArgs(argv, USAGE, 'bench-out/gateway.json', {
    'timeout-s': { type: 'string', default: '10' },
    targets: { type: 'string', default: TARGETS.join(',') },
    workloads: { type: 'string', default: WORKLOADS.join(',') },
    'portkey-dir': { type: 'string', default: DEFAULT_PORTKEY_DIR },
  })
  return {
    ...runOptions(values),
    timeoutS: intOption('timeout-s', values['timeout-s'], 1),
    targets: subset('targets', values.targets, TARGETS),
    workloads: subset('workloads', values.workloads, WORKLOADS),
    portkeyDir: values['portkey-dir'],
  }
}

const log = (line: string) => process.stderr.write(`bench:gateway: ${line}\n`)

function machine(portkey: PortkeyInstall | undefined) {
  return {
    ...machineInfo(),
    portkey: portkey?.version,
    portkeyHonoNodeServer: portkey?.honoNodeServer,
  }
}

export async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv)
  if (!existsSync(AYA_CLI)) throw new Error(`${AYA_CLI} is missing: run \`npm run build\` first`)
  ensureTools(log)
  const portkey = options.targets.includes('portkey')
    ? ensurePortkey(options.portkeyDir, log)
    : undefined
  const workloads = options.workloads.map(workload)
  const estimateS = estimateRunS(options, options.targets.length * workloads.length)
  const watchdog = startWatchdog({ ...options, estimateS }, log)
  const dir = makeTempDir('aya-bench-gateway-', options.keepTmp)
  const startedAt = new Date()
  const machineAtStart = machine(portkey)
  const git = await gitInfo()
  log(
    `${options.targets.length} targets × ${workloads.length} workloads, ` +
      `${options.rounds}×${options.durationS}s at c=${options.connections}, ` +
      `${options.c1Rounds}×${options.c1DurationS}s at c=1, about ${Math.round(estimateS)} s; ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; temp dir ${dir}`,
  )
  const failures: string[] = []
  try {
    const upstream = await startNginx(
      dir,
      'upstream',
      LOAD_CPU,
      'upstream nginx, fixed OpenAI answers (CPU 0)',
      (port) => llmUpstreamConf(dir, 'upstream', port),
      answersEveryRequest(
        workloads.map((w) => ({ workload: w, headers: headersFor('direct', w, 0) })),
      ),
    )
    const { targets } = options
    const started = await startTargets(dir, targets, workloads, upstream, portkey, failures, log)
    if (started.length === 0) throw new Error('no target started')
    const cells = cellsFor(dir, started, workloads, upstream.port, options.timeoutS)
    const groups = workloads.map((w) => ({
      label: w.name,
      cells: cells.filter((c) => c.workload === w),
    }))
    const waitedS = await measureAll(groups, upstream, options, log)

    const summaries: CellSummary[] = cells.map((c) => summarizeCell(c, cells))
    for (const c of cells) if (c.failure) failures.push(c.failure)
    const servers = started.map(({ name, server }) => ({
      name,
      description: server.description,
      peakRssKb: peakRssKb(server.proc.pid),
    }))
    const aya = await ayaChecks(started, cells)
    for (const check of aya) {
      if (!check.logMatchesMetrics) {
        failures.push(
          `${check.target}: ${check.accessLogLines} access-log lines but aya_requests_total ${check.metricsRequestsTotal}`,
        )
      }
    }
    for (const s of summaries) {
      if (s.errors.socket + s.errors.non2xx3xx > 0) {
        failures.push(
          `${s.name}/${s.workload}: ${s.errors.socket} socket errors (${s.errors.timeouts} ` +
            `timeouts), ${s.errors.non2xx3xx} non-2xx/3xx`,
        )
      }
    }

    const tables = workloads.map((w) => ({
      workload: w.name,
      description: w.description,
      bodyBytes: Buffer.byteLength(w.body),
      table: renderTable(
        summaries.filter((s) => s.workload === w.name),
        options.connections,
        options.durationS,
      ),
    }))
    const markdown = [
      ...tables.map(
        (t) => `#### ${t.workload}: ${t.description} (${t.bodyBytes} B body)\n\n${t.table}\n`,
      ),
      `#### Targets\n\n${renderServers(servers)}\n`,
    ].join('\n')
    process.stdout.write(
      `\n${markdown}\nreq per CPU-s = completed requests ÷ the target's CPU seconds (utime+stime) ` +
        `over the same wrk run; ratios are per round, then median'd. Added p50 at c=1 is ` +
        `against "direct" in the same round.\n`,
    )
    for (const check of aya)
      process.stdout.write(`${check.target} checks: ${JSON.stringify(check)}\n`)
    const rows = summaries.map((s) => ({ ...s, name: `${s.name}/${s.workload}` }))
    process.stdout.write(runsReport(rows, options.connections, waitedS))
    for (const f of failures) process.stdout.write(`FAILED ${f}\n`)

    const command = `npm run bench:gateway${argv.length ? ` -- ${argv.join(' ')}` : ''}`
    const result = {
      benchmark: 'bench:gateway',
      date: startedAt.toISOString(),
      durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
      command,
      git,
      machine: { ...machineAtStart, loadavgAtEnd: loadavg() },
      settings: { ...options, loadCpu: LOAD_CPU, proxyCpu: PROXY_CPU, model: MODEL },
      workloads: workloads.map((w) => ({ ...w, bodyBytes: Buffer.byteLength(w.body) })),
      tables,
      servers,
      summaries,
      aya,
      failures,
      samples: Object.fromEntries(
        cells.map((c) => [c.name, { warmup: c.warmup, c50: c.c50, c1: c.c1 }]),
      ),
    }
    const out = writeResult(options.out, result)
    const md = `${out.replace(/\.json$/, '')}.md`
    writeFileSync(md, `${command}\n\n${markdown}`)
    log(`wrote ${out} and ${md}`)
    return failures.length > 0 ? 1 : 0
  } finally {
    await endRun(watchdog, dir, options.keepTmp, log)
  }
}

// Run only as a script, so that the helpers can be imported.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  runAsScript('bench:gateway', main)
