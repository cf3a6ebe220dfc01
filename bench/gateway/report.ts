// One summary per target and workload, the ratios taken within each round, and the tables.
import type { Cell } from '../proxy/measure.ts'
import {
  p50Ms,
  perRoundDifference,
  perRoundRatio,
  type RunsSummary,
  requestsPerCpuS,
  requestsPerSec,
  rowLabel,
  summarizeRuns,
} from '../proxy/runs-summary.ts'
import { fmtAddedMs, fmtInt, fmtMs, fmtRange, fmtRatio, markdownTable } from '../proxy/stats.ts'
import type { TargetName } from './targets.ts'
import type { Workload, WorkloadName } from './workloads.ts'

export interface GatewayCell extends Cell {
  readonly target: TargetName
  readonly workload: Workload
}

export interface CellSummary extends Omit<RunsSummary, 'c1'> {
  /** The target's name (a cell's row in its workload's table). */
  readonly name: TargetName
  readonly workload: WorkloadName
  readonly failure?: string
  readonly c1: RunsSummary['c1'] & {
    /** Median over rounds of (p50 − direct's p50 in the same round): the hop's own latency. */
    readonly addedP50Ms: number | undefined
  }
  /** Per-round ratios, median'd. */
  readonly ratios: {
    readonly requestsPerCpuSVsNodeHttp: number | undefined
    readonly requestsPerCpuSVsPortkey: number | undefined
    readonly requestsPerSecVsNodeHttp: number | undefined
    readonly requestsPerSecVsPortkey: number | undefined
  }
}

/** `cell` against the other cells of its workload. */
export function summarizeCell(cell: GatewayCell, all: readonly GatewayCell[]): CellSummary {
  const find = (target: TargetName) =>
    all.find((c) => c.target === target && c.workload.name === cell.workload.name && !c.failure)
  const node = find('node-http')?.c50
  const portkey = find('portkey')?.c50
  const runs = summarizeRuns(cell.c50, cell.c1)
  return {
    name: cell.target,
    workload: cell.workload.name,
    ...(cell.failure ? { failure: cell.failure } : {}),
    ...runs,
    c1: {
      ...runs.c1,
      addedP50Ms:
        cell.target === 'direct'
          ? undefined
          : perRoundDifference(cell.c1, find('direct')?.c1, p50Ms),
    },
    ratios: {
      requestsPerCpuSVsNodeHttp: perRoundRatio(cell.c50, node, requestsPerCpuS),
      requestsPerCpuSVsPortkey: perRoundRatio(cell.c50, portkey, requestsPerCpuS),
      requestsPerSecVsNodeHttp: perRoundRatio(cell.c50, node, requestsPerSec),
      requestsPerSecVsPortkey: perRoundRatio(cell.c50, portkey, requestsPerSec),
    },
  }
}

/** One workload's table: a row per target. */
export function renderTable(
  summaries: readonly CellSummary[],
  connections: number,
  durationS: number,
): string {
  const header = [
    'Target (CPU 1)',
    'req/s',
    `CPU-s per ${durationS} s`,
    '**req per CPU-s**',
    '[min–max]',
    'CPU per req',
    'vs node-http',
    'vs portkey',
    `p50 c=${connections}`,
    `p99 c=${connections}`,
    'p50 c=1',
    'p99 c=1',
    'added p50 c=1',
  ]
  const rows = summaries.map((s) => [
    rowLabel(s),
    fmtInt(s.c50.requestsPerSec),
    s.c50.proxyCpuS === undefined ? '–' : s.c50.proxyCpuS.toFixed(2),
    `**${fmtInt(s.c50.requestsPerCpuS)}**`,
    fmtRange(s.c50.requestsPerCpuSRange),
    s.c50.requestsPerCpuS ? fmtMs(1000 / s.c50.requestsPerCpuS) : '–',
    fmtRatio(s.ratios.requestsPerCpuSVsNodeHttp),
    fmtRatio(s.ratios.requestsPerCpuSVsPortkey),
    fmtMs(s.c50.p50Ms),
    fmtMs(s.c50.p99Ms),
    fmtMs(s.c1.p50Ms),
    fmtMs(s.c1.p99Ms),
    s.name === 'direct' ? '—' : fmtAddedMs(s.c1.addedP50Ms),
  ])
  return markdownTable(header, rows)
}

export interface ServerRow {
  readonly name: string
  readonly description: string
  readonly peakRssKb: number | undefined
}

export function renderServers(rows: readonly ServerRow[]): string {
  return markdownTable(
    ['Target', 'what runs', 'peak RSS'],
    rows.map((r) => [
      r.name,
      r.description,
      r.peakRssKb === undefined ? '–' : `${(r.peakRssKb / 1024).toFixed(0)} MB`,
    ]),
  )
}
