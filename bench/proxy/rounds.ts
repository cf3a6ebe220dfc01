// Interleaved rounds: each round hits every cell of every group once, and the starting cell of a
// group rotates from round to round, so that machine-speed drift hits every cell alike and ratios
// taken within a round cancel it.
import { type Cell, type Log, measure, measureClean, waitBudget } from './measure.ts'
import type { RunOptions } from './run-options.ts'
import type { Server } from './servers.ts'
import { fmtInt, fmtMs, fmtPct } from './stats.ts'

/** Cells compared with each other (one workload); `label` names the group in the progress log. */
export interface CellGroup {
  readonly label?: string
  readonly cells: readonly Cell[]
}

interface RoundsRun {
  readonly phase: 'c50' | 'c1'
  readonly count: number
  readonly connections: number
  readonly durationS: number
}

async function runRounds(
  groups: readonly CellGroup[],
  upstream: Server,
  options: RunOptions,
  run: RoundsRun,
  log: Log,
): Promise<void> {
  const { phase, count, connections, durationS } = run
  for (let round = 0; round < count; round++) {
    for (const { label, cells } of groups) {
      const order = cells.map((_, i) => cells[(i + round) % cells.length]!)
      const parts: string[] = []
      for (const [position, cell] of order.entries()) {
        const sample = await measureClean(
          cell,
          upstream,
          options,
          connections,
          durationS,
          round,
          position,
          log,
        )
        if (!sample) continue
        cell[phase].push(sample)
        const perCpu = sample.requestsPerCpuS
        parts.push(
          `${cell.server.name} ${fmtInt(sample.wrk.requestsPerSec)}/s` +
            (phase === 'c50' ? ` ${fmtInt(perCpu)}/cpu-s` : ` p50 ${fmtMs(sample.wrk.p50Ms)}`) +
            (sample.otherOnProxyCpu + sample.stealOnProxyCpu > 0.05
              ? ` (CPU 1 other ${fmtPct(sample.otherOnProxyCpu)}, steal ${fmtPct(sample.stealOnProxyCpu)})`
              : ''),
        )
      }
      const where = label ? ` ${label}` : ''
      log(`${phase} round ${round + 1}/${count}${where}: ${parts.join(', ')}`)
    }
  }
}

/**
 * A warm-up run per cell (kept in `warmup`, out of the tables), the c=50 rounds, then the c=1
 * rounds. Returns the seconds spent waiting for other load on the machine to stop.
 */
export async function measureAll(
  groups: readonly CellGroup[],
  upstream: Server,
  options: RunOptions,
  log: Log,
): Promise<number> {
  const { connections, warmupS } = options
  if (warmupS > 0) {
    for (const cell of groups.flatMap((g) => g.cells)) {
      const sample = await measure(cell, upstream, connections, warmupS, -1, 0)
      if (sample) cell.warmup.push(sample)
    }
    log('warm-up done')
  }
  waitBudget.leftS = options.maxWaitS
  const c50: RoundsRun = {
    phase: 'c50',
    count: options.rounds,
    connections,
    durationS: options.durationS,
  }
  await runRounds(groups, upstream, options, c50, log)
  const c1: RoundsRun = {
    phase: 'c1',
    count: options.c1Rounds,
    connections: 1,
    durationS: options.c1DurationS,
  }
  await runRounds(groups, upstream, options, c1, log)
  return options.maxWaitS - Math.max(0, waitBudget.leftS)
}
