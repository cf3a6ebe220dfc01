// Process, port and /proc helpers for the proxy benchmark. Everything started through
// `startPinned` is tracked so that `stopAll` (and the exit handler) can end it by pid.
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ExecResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Short-lived commands (wrk, aya validate) still running: stopped too when the run is cut short. */
const commands = new Set<ChildProcess>()

/** Runs a command to completion (bounded by `timeoutMs`, then SIGKILL); never throws on exit code. */
export function exec(file: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        commands.delete(child)
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
    commands.add(child)
  })
}

/** First line of a command's combined output, or undefined when it cannot be run. */
export function firstLine(file: string, args: string[]): string | undefined {
  // nginx -v and wrk -v write to stderr, and wrk -v exits 1: take both streams, any exit code.
  const run = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
  if (run.error) return undefined
  const text = `${run.stdout?.toString() ?? ''}${run.stderr?.toString() ?? ''}`.trim()
  return text === '' ? undefined : text.split('\n')[0]
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('/bin/sh', ['-c', `command -v ${name}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** binary → Debian package that provides it. */
const PACKAGES: Readonly<Record<string, string>> = {
  nginx: 'nginx',
  haproxy: 'haproxy',
  wrk: 'wrk',
  taskset: 'util-linux',
}

/** Installs nginx, haproxy, wrk (and taskset) with apt-get when missing. */
export function ensureTools(log: (line: string) => void): void {
  const missing = Object.keys(PACKAGES).filter((binary) => !hasCommand(binary))
  if (missing.length === 0) return
  const packages = [...new Set(missing.map((binary) => PACKAGES[binary]!))]
  log(`installing ${packages.join(' ')} with apt-get`)
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', timeout: 300_000 })
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], {
    stdio: 'inherit',
    timeout: 300_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

/** A free TCP port on 127.0.0.1 (bound then released; the kernel will not reuse it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export const CLK_TCK = Number(firstLine('getconf', ['CLK_TCK']) ?? 100)

/** utime + stime of a process in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Field 2 (comm) may hold spaces; the fields after its closing parenthesis start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[14 - 3]) + Number(fields[15 - 3])
}

export interface CoreTicks {
  /** user + nice + system + irq + softirq: everything but idle, iowait and steal. */
  readonly busy: number
  /** Time the hypervisor gave this vCPU to someone else. */
  readonly steal: number
}

/** One CPU's counters from /proc/stat, in clock ticks. */
export function coreTicks(cpu: number): CoreTicks {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `))
  const [user, nice, system, , , irq, softirq, steal] = (line ?? '')
    .split(/\s+/)
    .slice(1)
    .map(Number)
  return {
    busy: (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0),
    steal: steal ?? 0,
  }
}

/** Share of all CPUs' time that was busy (or stolen) over the next `windowMs`. */
export async function machineBusy(windowMs: number): Promise<number> {
  const read = () => {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .split(/\s+/)
      .slice(1, 9)
      .map(Number)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields
    const busy = user! + nice! + system! + irq! + softirq! + steal!
    return { busy, total: busy + idle! + iowait! }
  }
  const a = read()
  await sleep(windowMs)
  const b = read()
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0
}

/** Peak resident set size in KiB (VmHWM), or undefined when the process is gone. */
export function peakRssKb(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface Pinned {
  readonly name: string
  /** The pid of the server itself: `taskset` execs the command, so no wrapper is left. */
  readonly pid: number
  readonly child: ChildProcess
  readonly stdoutPath: string
  readonly stderrPath: string
  exited: boolean
}

const running = new Set<Pinned>()

/**
 * Starts `command args` pinned to `cpu` with `taskset -c`, stdout and stderr going to files.
 * taskset execs the command in place, so `pid` is the server's own pid (what /proc is read for).
 */
export function startPinned(
  name: string,
  cpu: number,
  command: string,
  args: string[],
  files: { stdout: string; stderr: string },
  env: NodeJS.ProcessEnv = process.env,
): Pinned {
  const out = openSync(files.stdout, 'w')
  const err = openSync(files.stderr, 'w')
  const child = spawn('taskset', ['-c', String(cpu), command, ...args], {
    stdio: ['ignore', out, err],
    env,
  })
  closeSync(out)
  closeSync(err)
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  const pinned: Pinned = {
    name,
    pid: child.pid,
    child,
    stdoutPath: files.stdout,
    stderrPath: files.stderr,
    exited: false,
  }
  child.once('exit', () => {
    pinned.exited = true
  })
  running.add(pinned)
  return pinned
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stop(proc: Pinned, graceMs = 5000): Promise<void> {
  running.delete(proc)
  if (proc.exited) return
  const gone = new Promise<void>((resolve) => {
    if (proc.exited) resolve()
    else proc.child.once('exit', () => resolve())
  })
  signal(proc.pid, 'SIGTERM')
  const timer = setTimeout(() => signal(proc.pid, 'SIGKILL'), graceMs)
  await gone
  clearTimeout(timer)
}

export async function stopAll(): Promise<void> {
  killCommands()
  await Promise.all([...running].map((proc) => stop(proc)))
}

/** Last resort from an `exit` handler: synchronous SIGKILL of whatever is still tracked. */
export function killAllNow(): void {
  killCommands()
  for (const proc of running) if (!proc.exited) signal(proc.pid, 'SIGKILL')
  running.clear()
}

function killCommands(): void {
  for (const child of commands) if (child.pid !== undefined) signal(child.pid, 'SIGKILL')
  commands.clear()
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

export interface HttpCheck {
  readonly status: number
  readonly body: string
}

/** One GET with a short timeout; `undefined` when the connection fails. */
export async function httpGet(url: string, timeoutMs = 2000): Promise<HttpCheck | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.status, body: await res.text() }
  } catch {
    return undefined
  }
}

/** Polls `url` until it answers 200 or `timeoutMs` passes; returns the last answer. */
export async function waitForHttp(
  url: string,
  proc: Pinned,
  timeoutMs = 15_000,
): Promise<HttpCheck | undefined> {
  const deadline = Date.now() + timeoutMs
  let last: HttpCheck | undefined
  while (Date.now() < deadline && !proc.exited) {
    last = await httpGet(url)
    if (last?.status === 200) return last
    await sleep(100)
  }
  return last
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}
