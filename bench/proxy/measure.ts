// One wrk run against one cell (a server and the request sent to it), with the server's and the
// upstream's CPU read from /proc over the same window, and the redo-while-noisy loop around it.
import { performance } from 'node:perf_hooks'
import type { Server } from './servers.ts'
import { fmtPct } from './stats.ts'
import { CLK_TCK, coreTicks, cpuTicks, isAlive, machineBusy, tail } from './system.ts'
import { runWrk, type WrkResult } from './wrk.ts'

/** wrk and the upstream share CPU 0; every server measured is pinned to CPU 1. */
export const LOAD_CPU = 0
export const PROXY_CPU = 1

/** One wrk run against one cell, with the proxy's and the upstream's CPU over the same window. */
export interface Sample {
  readonly round: number
  /** Position of this cell within its round (the order rotates each round). */
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

/** What wrk runs against: one server and one request shape, with the samples taken so far. */
export interface Cell {
  readonly name: string
  readonly server: Server
  readonly url: string
  /** A wrk Lua script that sets the method, body and headers; a plain GET without one. */
  readonly script?: string
  /** wrk's wait for one response before it counts a timeout (its default: 2 s). */
  readonly timeoutS?: number
  readonly c50: Sample[]
  readonly c1: Sample[]
  readonly warmup: Sample[]
  /** Requests wrk completed against this cell in every run, redone ones included. */
  requestsSent: number
  failure?: string
}

export interface NoiseLimits {
  /** A run is redone when something else used more than this share of the proxy CPU. */
  readonly maxOther: number
  readonly retries: number
}

export type Log = (line: string) => void

export async function measure(
  cell: Cell,
  upstream: Server,
  connections: number,
  durationS: number,
  round: number,
  position: number,
): Promise<Sample | undefined> {
  const { proc } = cell.server
  if (cell.failure) return undefined
  if (proc.exited || !isAlive(proc.pid)) {
    cell.failure = `${cell.name} (pid ${proc.pid}) exited during the run\n${tail(proc.stderrPath)}`
    return undefined
  }
  const p0 = cpuTicks(proc.pid)
  const u0 = cpuTicks(upstream.proc.pid)
  const c0 = coreTicks(PROXY_CPU)
  const t0 = performance.now()
  let wrk: WrkResult
  try {
    const { url, script, timeoutS } = cell
    wrk = (await runWrk({ url, script, timeoutS, connections, durationS, cpu: LOAD_CPU })).result
  } catch (error) {
    cell.failure = `${cell.name}: wrk failed: ${(error as Error).message}`
    return undefined
  }
  cell.requestsSent += wrk.requests
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
export const waitBudget = { leftS: 0 }

/** Waits (within the shared budget) until the whole machine is under 10% busy for a second. */
async function waitForQuiet(log: Log): Promise<void> {
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
export async function measureClean(
  cell: Cell,
  upstream: Server,
  limits: NoiseLimits,
  connections: number,
  durationS: number,
  round: number,
  position: number,
  log: Log,
): Promise<Sample | undefined> {
  for (let attempt = 1; ; attempt++) {
    await waitForQuiet(log)
    const sample = await measure(cell, upstream, connections, durationS, round, position)
    if (!sample) return undefined
    const other = sample.otherOnProxyCpu + sample.stealOnProxyCpu
    if (other <= limits.maxOther) return { ...sample, attempts: attempt }
    if (attempt > limits.retries) return { ...sample, attempts: attempt, contaminated: true }
    log(`${cell.name}: other load took ${fmtPct(other)} of CPU 1 during the run: redoing it`)
  }
}
