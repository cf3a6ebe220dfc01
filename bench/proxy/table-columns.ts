// The columns the benchmarks' tables share, each a header and how to fill its cell from a row.
import type { HopSummary } from './runs-summary.ts'
import { fmtAddedMs, fmtInt, fmtMs, fmtRange, markdownTable } from './stats.ts'

export interface Column<S> {
  readonly header: string
  readonly cell: (row: S) => string
}

/** One row per summary, one column per entry of `columns`. */
export function renderColumns<S>(rows: readonly S[], columns: readonly Column<S>[]): string {
  return markdownTable(
    columns.map((c) => c.header),
    rows.map((row) => columns.map((c) => c.cell(row))),
  )
}

/** What every table's rows carry: a hop's summary and a name. */
export type TableRow = HopSummary & { readonly name: string; readonly failure?: string }

/** The name, flagged when the row failed or kept noisy runs. */
function rowLabel(s: TableRow): string {
  if (s.failure) return `${s.name} (FAILED)`
  if (s.noise.contaminated > 0) return `${s.name} (${s.noise.contaminated} noisy runs kept)`
  return s.name
}

export function runColumns(connections: number) {
  const column = (header: string, cell: (row: TableRow) => string): Column<TableRow> => ({
    header,
    cell,
  })
  return {
    target: column('Target (CPU 1)', rowLabel),
    requestsPerSec: column('req/s', (s) => fmtInt(s.c50.requestsPerSec)),
    requestsPerCpuS: column('**req per CPU-s**', (s) => `**${fmtInt(s.c50.requestsPerCpuS)}**`),
    requestsPerCpuSRange: column('[min–max]', (s) => fmtRange(s.c50.requestsPerCpuSRange)),
    p50: column(`p50 c=${connections}`, (s) => fmtMs(s.c50.p50Ms)),
    p99: column(`p99 c=${connections}`, (s) => fmtMs(s.c50.p99Ms)),
    p50C1: column('p50 c=1', (s) => fmtMs(s.c1.p50Ms)),
    addedP50C1: column('added p50 c=1', (s) =>
      s.name === 'direct' ? '—' : fmtAddedMs(s.c1.addedP50Ms),
    ),
  }
}
