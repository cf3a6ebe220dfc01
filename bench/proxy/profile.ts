// Profiles Aya under the bench:proxy load: the same config (routing, metrics, access log on) under
// `node --cpu-prof`, pinned to CPU 1, with wrk -c50 from CPU 0 against nginx `return 200 "ok"`.
// Prints the top self-time functions, mapped back to src/*.ts through dist's source maps, and
// copies the .cpuprofile (open it in Chrome DevTools → Performance) next to the JSON summary.
//
//   npm run build && node --import tsx bench/proxy/profile.ts [--duration-s 20] [--top 10]
//   node --import tsx bench/proxy/profile.ts --workload chat-32k [--policy aya]   (bench:gateway's
//     LLM route and workload instead: Aya's models gateway before the fixed-answer upstream)
//   node --import tsx bench/proxy/profile.ts --analyse bench-out/aya-profile.cpuprofile
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { SourceMap } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { MODEL } from '../gateway/answers.ts'
import {
  type AyaPolicy,
  ayaModelsYaml,
  CHAT_PATH,
  llmUpstreamConf,
  wrkPostScript,
} from '../gateway/configs.ts'
import { headersFor } from '../gateway/targets.ts'
import { WORKLOADS, type WorkloadName, workload } from '../gateway/workloads.ts'
import { AYA_CLI, startAya, startNginx, startNginxOk } from './servers.ts'
import { fmtInt, markdownTable } from './stats.ts'
import { ensureTools, killAllNow, stop, stopAll } from './system.ts'
import { runWrk } from './wrk.ts'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface SelfTime {
  /** `file:line function`, file relative to the repository (src/*.ts where a source map exists). */
  readonly location: string
  readonly group: string
  readonly selfMs: number
  readonly percent: number
}

const log = (line: string) => process.stderr.write(`bench:profile: ${line}\n`)

const maps = new Map<string, SourceMap | undefined>()

function sourceMapFor(file: string): SourceMap | undefined {
  if (!maps.has(file)) {
    const path = `${file}.map`
    maps.set(
      file,
      existsSync(path) ? new SourceMap(JSON.parse(readFileSync(path, 'utf8'))) : undefined,
    )
  }
  return maps.get(file)
}

/** Where a frame lives: src/…ts:line for Aya (via the source map), package/path for dependencies. */
function locate(frame: CallFrame): { file: string; line: number; group: string } {
  const { url } = frame
  const line = frame.lineNumber + 1
  if (url === '') return { file: '(native)', line: 0, group: 'native / VM' }
  if (url.startsWith('node:')) return { file: url, line, group: 'node core' }
  if (url.startsWith('wasm://')) return { file: url, line, group: 'undici llhttp (wasm)' }
  if (!url.startsWith('file://')) return { file: url, line, group: 'other' }
  const path = fileURLToPath(url)
  const modules = path.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const file = path.slice(modules + '/node_modules/'.length)
    return {
      file,
      line,
      group: file.startsWith('@') ? file.split('/').slice(0, 2).join('/') : file.split('/')[0]!,
    }
  }
  // Paths relative to the checkout that holds dist/, wherever the profile is analysed.
  const dist = path.lastIndexOf('/dist/')
  const root = dist >= 0 ? path.slice(0, dist) : process.cwd()
  const entry = sourceMapFor(path)?.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry && 'originalSource' in entry) {
    const source = resolve(dirname(path), entry.originalSource.replace(/^file:\/\//, ''))
    return { file: relative(root, source), line: entry.originalLine + 1, group: 'aya' }
  }
  return { file: relative(root, path), line, group: 'aya' }
}

const isNative = (frame: CallFrame) => frame.url === ''
const isNodeCore = (frame: CallFrame) => frame.url.startsWith('node:')

/**
 * Self time per function (file, line, name), largest first, as a share of busy time (`(idle)` is
 * left out). Native frames (`writev`, `writeString`…) say little alone, so each is split by its
 * owner: the nearest caller outside node core, i.e. the Aya or dependency code that caused it.
 */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, ProfileNode>()
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node)
  }
  const describe = (frame: CallFrame) => {
    const where = locate(frame)
    return { ...where, text: `${where.file}:${where.line} ${frame.functionName || '(anonymous)'}` }
  }
  const owner = (node: ProfileNode) => {
    for (let p = parent.get(node.id); p; p = parent.get(p.id)) {
      if (!isNative(p.callFrame) && !isNodeCore(p.callFrame)) return describe(p.callFrame).text
    }
    return undefined
  }
  const totals = new Map<string, { group: string; us: number }>()
  let busy = 0
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i + 1] is the time until the next sample, i.e. the time spent in sample i.
    const us = profile.timeDeltas[i + 1] ?? 0
    const node = byId.get(profile.samples[i]!)
    if (!node) continue
    const frame = node.callFrame
    const name = frame.functionName || '(anonymous)'
    if (name === '(idle)') continue
    let location: string
    let group: string
    if (name.startsWith('(') && isNative(frame) && name !== '(anonymous)') {
      location = name
      group = name
    } else if (isNative(frame)) {
      const by = owner(node)
      location = `(native) ${name}${by ? ` ← ${by}` : ''}`
      group = 'native (syscalls, V8 builtins)'
    } else {
      const where = describe(frame)
      location = where.text
      group = where.group
    }
    const entry = totals.get(location) ?? { group, us: 0 }
    entry.us += us
    totals.set(location, entry)
    busy += us
  }
  return [...totals.entries()]
    .map(([location, { group, us }]) => ({
      location,
      group,
      selfMs: us / 1000,
      percent: (100 * us) / busy,
    }))
    .sort((a, b) => b.selfMs - a.selfMs)
}

/**
 * Inclusive (total) time of each Aya function: the time spent in it and everything it called,
 * counted once per sample however deep it recurses. Shows what a call site costs end to end,
 * e.g. the access log line or the metrics update with their syscalls.
 */
export function ayaInclusiveTimes(profile: CpuProfile): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, ProfileNode>()
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node)
  }
  const where = new Map<number, string | undefined>()
  const ayaLocation = (node: ProfileNode) => {
    if (!where.has(node.id)) {
      const frame = node.callFrame
      const isAya = frame.url.startsWith('file://') && !frame.url.includes('/node_modules/')
      const at = isAya ? locate(frame) : undefined
      where.set(node.id, at && `${at.file}:${at.line} ${frame.functionName || '(anonymous)'}`)
    }
    return where.get(node.id)
  }
  const totals = new Map<string, number>()
  let busy = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0
    const leaf = byId.get(profile.samples[i]!)
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue
    busy += us
    const seen = new Set<string>()
    for (let node: ProfileNode | undefined = leaf; node; node = parent.get(node.id)) {
      const location = ayaLocation(node)
      if (location && !seen.has(location)) {
        seen.add(location)
        totals.set(location, (totals.get(location) ?? 0) + us)
      }
    }
  }
  return [...totals.entries()]
    .map(([location, us]) => ({
      location,
      group: 'aya',
      selfMs: us / 1000,
      percent: (100 * us) / busy,
    }))
    .sort((a, b) => b.selfMs - a.selfMs)
}

function byGroup(rows: readonly SelfTime[]): SelfTime[] {
  const groups = new Map<string, number>()
  for (const r of rows) groups.set(r.group, (groups.get(r.group) ?? 0) + r.selfMs)
  const all = rows.reduce((n, r) => n + r.selfMs, 0)
  return [...groups.entries()]
    .map(([group, selfMs]) => ({ location: group, group, selfMs, percent: (100 * selfMs) / all }))
    .sort((a, b) => b.selfMs - a.selfMs)
}

function table(list: readonly SelfTime[], time = 'self time'): string {
  return markdownTable(
    ['#', time, '%', 'function'],
    list.map((r, i) => [
      String(i + 1),
      `${fmtInt(r.selfMs)} ms`,
      r.percent.toFixed(1),
      `\`${r.location}\``,
    ]),
  )
}

/** Prints the three tables for a profile and returns them for the JSON summary. */
export function report(profile: CpuProfile, top: number) {
  const rows = selfTimes(profile)
  const groups = byGroup(rows)
  const inclusive = ayaInclusiveTimes(profile)
  process.stdout.write(
    `\nTop ${top} self-time functions, % of busy (non-idle) time; the profile spans start-up, ` +
      `warm-up and load:\n\n${table(rows.slice(0, top))}\n\nBy package:\n\n${table(groups)}\n` +
      `\nAya functions by inclusive time (self + callees, % of busy time):\n\n` +
      `${table(inclusive.slice(0, top), 'total time')}\n`,
  )
  return { top: rows.slice(0, 50), groups, ayaInclusive: inclusive.slice(0, 50) }
}

/** What Aya serves under the profile: bench:proxy's one route, or bench:gateway's LLM route. */
type Load =
  | { readonly kind: 'proxy' }
  | { readonly kind: 'gateway'; readonly workload: WorkloadName; readonly policy: AyaPolicy }

/** Runs Aya under --cpu-prof and load; returns the path of the .cpuprofile (in `dir`). */
async function record(
  dir: string,
  options: { durationS: number; warmupS: number; connections: number; load: Load },
) {
  const profileDir = join(dir, 'prof')
  mkdirSync(profileDir)
  const { load } = options
  const upstream =
    load.kind === 'proxy'
      ? await startNginxOk(dir, 'upstream', 0, 'upstream nginx (CPU 0)')
      : await startNginx(
          dir,
          'upstream',
          0,
          'upstream nginx, fixed OpenAI answers (CPU 0)',
          (port) => llmUpstreamConf(dir, 'upstream', port),
        )
  const flags = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]
  let script: string | undefined
  let path = '/'
  if (load.kind === 'gateway') {
    const w = workload(load.workload)
    const bodyFile = join(dir, `${w.name}.json`)
    writeFileSync(bodyFile, w.body)
    script = join(dir, `${w.name}.lua`)
    writeFileSync(script, wrkPostScript(bodyFile, headersFor('aya', w, upstream.port)))
    path = CHAT_PATH
  }
  const aya = await startAya({
    dir,
    cpu: 1,
    upstreamPort: upstream.port,
    accessLog: join(dir, 'aya-access.log'),
    nodeFlags: flags,
    ...(load.kind === 'gateway'
      ? {
          config: (port: number, adminPort: number) =>
            ayaModelsYaml(port, adminPort, upstream.port, load.policy, MODEL),
          probe: async () => undefined,
        }
      : {}),
  })
  const url = `http://127.0.0.1:${aya.port}${path}`
  const { connections } = options
  await runWrk({ url, script, connections, durationS: options.warmupS, cpu: 0 })
  const { result } = await runWrk({
    url,
    script,
    connections,
    durationS: options.durationS,
    cpu: 0,
  })
  log(`aya under --cpu-prof: ${fmtInt(result.requestsPerSec)} req/s at c=${connections}`)
  if (result.non2xx3xx > 0 || result.socketErrors > 0)
    throw new Error(
      `wrk saw ${result.non2xx3xx} non-2xx answers and ${result.socketErrors} socket errors`,
    )
  // The profile is written when the process exits normally (SIGTERM → drain → exit).
  await stop(aya.proc, 15_000)
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('aya exited without writing a .cpuprofile')
  return { path: join(profileDir, file), wrk: result }
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'duration-s': { type: 'string', default: '20' },
      'warmup-s': { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      top: { type: 'string', default: '10' },
      out: { type: 'string', default: 'bench-out/aya-profile.json' },
      /** bench:gateway's workload on its LLM route, instead of bench:proxy's GET /. */
      workload: { type: 'string' },
      policy: { type: 'string', default: 'aya' },
      /** Only analyse a saved .cpuprofile; runs nothing. */
      analyse: { type: 'string' },
    },
  })
  const top = Number(values.top)
  if (values.analyse) {
    report(JSON.parse(readFileSync(values.analyse, 'utf8')) as CpuProfile, top)
    return
  }
  if (!existsSync(AYA_CLI)) throw new Error(`${AYA_CLI} is missing: run \`npm run build\` first`)
  const name = values.workload
  if (name !== undefined && !(WORKLOADS as readonly string[]).includes(name))
    throw new Error(`--workload ${name}: expected one of ${WORKLOADS.join(', ')}`)
  if (values.policy !== 'aya' && values.policy !== 'least-request')
    throw new Error(`--policy ${values.policy}: expected aya or least-request`)
  const load: Load =
    name === undefined
      ? { kind: 'proxy' }
      : { kind: 'gateway', workload: name as WorkloadName, policy: values.policy }
  ensureTools(log)
  const dir = mkdtempSync(join(tmpdir(), 'aya-bench-profile-'))
  try {
    const recorded = await record(dir, {
      durationS: Number(values['duration-s']),
      warmupS: Number(values['warmup-s']),
      connections: Number(values.connections),
      load,
    })
    const profile = JSON.parse(readFileSync(recorded.path, 'utf8')) as CpuProfile
    const tables = report(profile, top)
    const out = resolve(values.out)
    mkdirSync(dirname(out), { recursive: true })
    const cpuprofile = `${out.replace(/\.json$/, '')}.cpuprofile`
    copyFileSync(recorded.path, cpuprofile)
    const summary = { date: new Date().toISOString(), wrk: recorded.wrk, ...tables }
    writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`)
    log(`wrote ${out} and ${cpuprofile}`)
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

// Run only as a script, so that the analysis functions can be imported.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.on('exit', killAllNow)
  main(process.argv.slice(2)).catch((error: unknown) => {
    killAllNow()
    process.stderr.write(
      `bench:profile: ${error instanceof Error ? error.message : String(error)}\n`,
    )
    process.exitCode = 2
  })
}
