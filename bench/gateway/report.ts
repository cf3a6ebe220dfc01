// One summary per target and workload, the ratios taken within each round, and the tables.
import type { Cell } from '../proxy/measure.ts'
import {
  type HopSummary,
  perRoundRatio,
  requestsPerCpuS,
  requestsPerSec,
  summarizeHop,
} from '../proxy/runs-summary.ts'
import { fmtMb, fmtMs, fmtRatio, markdownTable } from '../proxy/stats.ts'
import { type Column, renderColumns, runColumns } from '../proxy/table-columns.ts'
import type { TargetName } from './targets.ts'
import type { Workload, WorkloadName } from './workloads.ts'

export interface GatewayCell extends Cell {
  readonly target: TargetName
  readonly workload: Workload
}

export interface CellSummary extends HopSummary {
  /** The target's name (a cell's row in its workload's table). */
  readonly name: TargetName
  readonly workload: WorkloadName
  readonly failure?: string
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
  return {
    name: cell.target,
    workload: cell.workload.name,
    ...(cell.failure ? { failure: cell.failure } : {}),
    ...summarizeHop(cell, find('direct')),
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
  const c = runColumns(connections)
  const column = (header: string, cell: (s: CellSummary) => string): Column<CellSummary> => ({
    header,
    cell,
  })
  const perCpu = (s: CellSummary) => s.c50.requestsPerCpuS
  return renderColumns(summaries, [
    c.target,
    c.requestsPerSec,
    column(`CPU-s per ${durationS} s`, (s) => s.c50.proxyCpuS?.toFixed(2) ?? '–'),
    c.requestsPerCpuS,
    c.requestsPerCpuSRange,
    column('CPU per req', (s) => (perCpu(s) ? fmtMs(1000 / perCpu(s)!) : '–')),
    column('vs node-http', (s) => fmtRatio(s.ratios.requestsPerCpuSVsNodeHttp)),
    column('vs portkey', (s) => fmtRatio(s.ratios.requestsPerCpuSVsPortkey)),
    c.p50,
    c.p99,
    c.p50C1,
    column('p99 c=1', (s) => fmtMs(s.c1.p99Ms)),
    c.addedP50C1,
  ])
}

export interface ServerRow {
  readonly name: string
  readonly description: string
  readonly peakRssKb: number | undefined
}

export function renderServers(rows: readonly ServerRow[]): string {
  return markdownTable(
    ['Target', 'what runs', 'peak RSS'],
    rows.map((r) => [r.name, r.description, fmtMb(r.peakRssKb)]),
  )
}
