/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  /** May be ±Infinity or NaN: the format writes them `+Inf`, `-Inf` and `NaN`. */
  readonly value: number
}

const SAMPLE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g
const ESCAPE = /\\(.)/g

/**
 * Parses the text format leniently: comments and unparsable lines are skipped, and so are samples
 * whose name is not in `names` when given (before the line is matched at all: an engine's page
 * is mostly histogram buckets nobody reads).
 */
export function parsePrometheusText(text: string, names?: ReadonlySet<string>): PromSample[] {
  const samples: PromSample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    if (names !== undefined && !names.has(line.slice(0, nameEnd(line)))) continue
    const match = SAMPLE.exec(line)
    if (!match) continue
    const value = sampleValue(match[3]!)
    if (value === undefined) continue
    const labels: Record<string, string> = {}
    if (match[2]) {
      for (const label of match[2].matchAll(LABEL)) labels[label[1]!] = unescapeLabel(label[2]!)
    }
    samples.push({ name: match[1]!, labels, value })
  }
  return samples
}

/** Where a sample line's metric name ends: at its labels or the space before its value. */
function nameEnd(line: string): number {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 0x7b || c === 0x20 || c === 0x09) return i
  }
  return line.length
}

/** A sample's value: a Go float, where `Number` alone would read `+Inf` as not a number. */
function sampleValue(token: string): number | undefined {
  switch (token) {
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY
    case '-Inf':
      return Number.NEGATIVE_INFINITY
    case 'NaN':
      return Number.NaN
  }
  const value = Number(token)
  return Number.isNaN(value) ? undefined : value
}

/** The format escapes only `\\`, `\"` and `\n` in label values; anything else stays as written. */
function unescapeLabel(raw: string): string {
  if (!raw.includes('\\')) return raw
  return raw.replace(ESCAPE, (written, char: string) =>
    char === 'n' ? '\n' : char === '\\' || char === '"' ? char : written,
  )
}
