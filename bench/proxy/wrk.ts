// Runs wrk pinned to a CPU and parses its text report (`--latency` adds the percentile table).
import { exec } from './system.ts'

export interface WrkResult {
  readonly requests: number
  /** wrk's own measured duration, seconds. */
  readonly durationS: number
  readonly requestsPerSec: number
  readonly p50Ms: number | undefined
  readonly p75Ms: number | undefined
  readonly p90Ms: number | undefined
  readonly p99Ms: number | undefined
  readonly socketErrors: number
  /** Of the socket errors, the requests unanswered after the timeout (wrk's default is 2 s). */
  readonly timeouts: number
  readonly non2xx3xx: number
}

export interface WrkRun {
  readonly url: string
  /** A Lua script (`wrk -s`) that sets the method, body and headers of every request. */
  readonly script?: string | undefined
  /** How long wrk waits for a response before counting a timeout; wrk's default is 2 s. */
  readonly timeoutS?: number | undefined
  readonly connections: number
  readonly durationS: number
  readonly cpu: number
}

export async function runWrk(run: WrkRun): Promise<{ result: WrkResult; text: string }> {
  const args = [
    '-c',
    String(run.cpu),
    'wrk',
    '-t1',
    `-c${run.connections}`,
    `-d${run.durationS}s`,
    '--latency',
    ...(run.script === undefined ? [] : ['-s', run.script]),
    ...(run.timeoutS === undefined ? [] : [`--timeout=${run.timeoutS}s`]),
    run.url,
  ]
  const limitS = run.durationS + Math.max(20, 2 * (run.timeoutS ?? 0))
  const { code, stdout, stderr } = await exec('taskset', args, limitS * 1000)
  if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr.trim() || stdout.trim()}`)
  return { result: parseWrk(stdout), text: stdout }
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

/** "108.00us" / "1.05ms" / "2.10s" → milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim())
  if (!match) return undefined
  return Number(match[1]) * UNIT_MS[match[2]!]!
}

export function parseWrk(text: string): WrkResult {
  const totals = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text)
  if (!totals) throw new Error(`cannot parse wrk output:\n${text}`)
  const requests = Number(totals[1])
  const durationS = (Number(totals[2]) * UNIT_MS[totals[3]!]!) / 1000
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)
  const percentile = (p: number) => {
    const match = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text)
    return match ? parseDurationMs(match[1]!) : undefined
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  return {
    requests,
    durationS,
    requestsPerSec: rps ? Number(rps[1]) : requests / durationS,
    p50Ms: percentile(50),
    p75Ms: percentile(75),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    socketErrors,
    timeouts: socket ? Number(socket[4]) : 0,
    non2xx3xx: non2xx ? Number(non2xx[1]) : 0,
  }
}
