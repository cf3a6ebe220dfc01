import type { TraceFormat, TraceRow } from './trace-request.ts'

/** A row the parser rejects, with its 1-based line number. */
export class TraceParseError extends Error {}

const nonNegativeInt = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0

/** What is wrong with a Mooncake row, naming the first bad field and its value; undefined if none. */
function mooncakeRowProblem(row: Record<string, unknown>): string | undefined {
  const shown = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value))
  if (typeof row.timestamp !== 'number' || !Number.isFinite(row.timestamp)) {
    return `timestamp must be a number of milliseconds, got ${shown(row.timestamp)}`
  }
  for (const field of ['input_length', 'output_length'] as const) {
    if (!nonNegativeInt(row[field])) {
      return `${field} must be a non-negative integer, got ${shown(row[field])}`
    }
  }
  const ids = row.hash_ids
  if (!Array.isArray(ids)) return `hash_ids must be an array, got ${shown(ids)}`
  const bad = ids.findIndex((id) => !nonNegativeInt(id))
  if (bad >= 0) return `hash_ids[${bad}] must be a non-negative integer, got ${shown(ids[bad])}`
  return undefined
}

/** Mooncake FAST'25 JSONL: `{timestamp, input_length, output_length, hash_ids}` per line. */
export function parseMooncakeJsonl(text: string): TraceRow[] {
  const rows: TraceRow[] = []
  const lines = text.split('\n')
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '') continue
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch (error) {
      throw new TraceParseError(`line ${i + 1}: not JSON (${(error as Error).message})`)
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TraceParseError(
        `line ${i + 1}: expected {timestamp, input_length, output_length, hash_ids}`,
      )
    }
    const row = parsed as Record<string, unknown>
    const problem = mooncakeRowProblem(row)
    if (problem !== undefined) throw new TraceParseError(`line ${i + 1}: ${problem}`)
    rows.push({
      timestampMs: row.timestamp as number,
      inputTokens: row.input_length as number,
      outputTokens: row.output_length as number,
      hashIds: row.hash_ids as number[],
    })
  }
  return rows
}

const AZURE_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/

/** `2023-11-16 18:17:03.9799600` as epoch milliseconds (UTC), keeping the sub-millisecond part. */
export function parseAzureTimestamp(text: string): number | undefined {
  const m = AZURE_TIME.exec(text.trim())
  if (!m) return undefined
  const [, y, mo, d, h, mi, s, frac = ''] = m
  const wholeMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  // Date.UTC rolls a month 13 or a 25th hour over into the next year or day; a trace means neither.
  const asWritten = `${y}-${mo}-${d}T${h}:${mi}:${s}`
  if (new Date(wholeMs).toISOString().slice(0, 19) !== asWritten) return undefined
  return wholeMs + (frac === '' ? 0 : Number(`0.${frac}`) * 1000)
}

/** Non-blank lines split into trimmed cells, each with its 1-based line number in the file. */
function csvLines(text: string): { readonly line: number; readonly cells: string[] }[] {
  return text
    .split('\n')
    .map((l, i) => ({ line: i + 1, text: l.trim() }))
    .filter((l) => l.text !== '')
    .map((l) => ({ line: l.line, cells: l.text.split(',').map((c) => c.trim()) }))
}

function columnIndex(header: readonly string[], name: string): number {
  const index = header.indexOf(name)
  if (index < 0) throw new TraceParseError(`missing column ${name}`)
  return index
}

function intCell(cells: readonly string[], index: number, column: string, line: number): number {
  const cell = cells[index]
  // Number('') is 0: a blank or missing cell would pass as a zero-token request.
  const value = cell === undefined || cell === '' ? Number.NaN : Number(cell)
  if (!nonNegativeInt(value)) {
    const got = cell === undefined ? 'nothing' : `'${cell}'`
    throw new TraceParseError(`line ${line}: ${column} must be a non-negative integer, got ${got}`)
  }
  return value
}

/** Azure LLM inference 2023 CSV: `TIMESTAMP,ContextTokens,GeneratedTokens`. */
export function parseAzureCsv(text: string): TraceRow[] {
  const [header = { cells: [] }, ...body] = csvLines(text)
  const at = columnIndex(header.cells, 'TIMESTAMP')
  const input = columnIndex(header.cells, 'ContextTokens')
  const output = columnIndex(header.cells, 'GeneratedTokens')
  return body.map(({ line, cells }) => {
    const timestampMs = parseAzureTimestamp(cells[at] ?? '')
    if (timestampMs === undefined) {
      throw new TraceParseError(`line ${line}: bad TIMESTAMP '${cells[at]}'`)
    }
    return {
      timestampMs,
      inputTokens: intCell(cells, input, 'ContextTokens', line),
      outputTokens: intCell(cells, output, 'GeneratedTokens', line),
    }
  })
}

/** ShareGPT lengths CSV (sarathi-serve): `num_prefill_tokens,num_decode_tokens,...`; no times. */
export function parseShareGptCsv(text: string): TraceRow[] {
  const [header = { cells: [] }, ...body] = csvLines(text)
  const input = columnIndex(header.cells, 'num_prefill_tokens')
  const output = columnIndex(header.cells, 'num_decode_tokens')
  return body.map(({ line, cells }) => ({
    timestampMs: undefined,
    inputTokens: intCell(cells, input, 'num_prefill_tokens', line),
    outputTokens: intCell(cells, output, 'num_decode_tokens', line),
  }))
}

/** Which format a file is, from its first line (name only as a tie-breaker). */
export function detectTraceFormat(text: string): TraceFormat | undefined {
  const first = text.slice(0, Math.max(0, text.indexOf('\n')) || text.length).trim()
  if (first.startsWith('{') && first.includes('"hash_ids"')) return 'mooncake'
  const header = first.split(',').map((c) => c.trim())
  if (header.includes('TIMESTAMP') && header.includes('ContextTokens')) return 'azure'
  if (header.includes('num_prefill_tokens') && header.includes('num_decode_tokens')) {
    return 'sharegpt'
  }
  return undefined
}

/** Rows of a trace; errors start with `source` (the file's path) when it is given. */
export function parseTraceRows(format: TraceFormat, text: string, source?: string): TraceRow[] {
  try {
    switch (format) {
      case 'mooncake':
        return parseMooncakeJsonl(text)
      case 'azure':
        return parseAzureCsv(text)
      case 'sharegpt':
        return parseShareGptCsv(text)
    }
  } catch (error) {
    if (source === undefined || !(error instanceof TraceParseError)) throw error
    throw new TraceParseError(`${source}: ${error.message}`)
  }
}
