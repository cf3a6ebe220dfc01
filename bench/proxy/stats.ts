// Medians and number formatting for the report.

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function range(values: readonly number[]): [number, number] | undefined {
  if (values.length === 0) return undefined
  return [Math.min(...values), Math.max(...values)]
}

export function defined<T>(values: ReadonlyArray<T | undefined>): T[] {
  return values.filter((v): v is T => v !== undefined)
}

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

export function fmtInt(n: number | undefined): string {
  return n === undefined ? '–' : intFormat.format(n)
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return '–'
  return ms < 1 ? `${Math.round(ms * 1000)} µs` : `${ms.toFixed(2)} ms`
}

export function fmtAddedMs(ms: number | undefined): string {
  if (ms === undefined) return '–'
  const sign = ms < 0 ? '−' : '+'
  return `${sign}${fmtMs(Math.abs(ms))}`
}

export function fmtRatio(r: number | undefined): string {
  return r === undefined ? '–' : r.toFixed(2)
}

export function fmtPct(fraction: number | undefined): string {
  return fraction === undefined ? '–' : `${Math.round(fraction * 100)}%`
}

export function fmtRange(r: [number, number] | undefined): string {
  return r ? `${fmtInt(r[0])}–${fmtInt(r[1])}` : '–'
}

/** A peak RSS in KiB as whole megabytes. */
export function fmtMb(kb: number | undefined): string {
  return kb === undefined ? '–' : `${(kb / 1024).toFixed(0)} MB`
}

/** A GitHub-flavoured markdown table. */
export function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
