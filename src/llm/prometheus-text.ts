/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  /** May be ±Infinity or NaN: the format writes them `+Inf`, `-Inf` and `NaN`. */
  readonly value: number
}

const NAME = /^[A-Za-z_:][\w:]*$/
const LABEL_NAME = /[A-Za-z_]\w*/y
const ESCAPE = /\\(.)/g

/**
 * Parses the text format leniently: comments and unparsable lines are skipped, and so are samples
 * whose name is not in `names` when given (before the line is read at all: an engine's page is
 * mostly histogram buckets nobody reads). What follows the value (a timestamp, an OpenMetrics
 * exemplar) is ignored. Blanks go where Prometheus's own parser (`expfmt`) takes them: before the
 * name, between it and its labels, and none needed between the labels and the value.
 *
 * Each line is read once, left to right, by hand: a regex over the label set (an unanchored
 * global match, or a greedy `{.*}`) rescanned a malformed line from every position, quadratic in
 * its length, and took an exemplar's braces for the label set's.
 */
export function parsePrometheusText(text: string, names?: ReadonlySet<string>): PromSample[] {
  const samples: PromSample[] = []
  for (const line of text.split('\n')) {
    let from = 0
    while (isBlank(line.charCodeAt(from))) from++
    if (from === line.length || line.charCodeAt(from) === 0x23) continue
    const end = nameEnd(line, from)
    const name = line.slice(from, end)
    if (names !== undefined && !names.has(name)) continue
    if (!NAME.test(name)) continue
    const sample = sampleOf(line, name, end)
    if (sample) samples.push(sample)
  }
  return samples
}

/** Where a sample line's metric name ends: at its labels or the blank after it. */
function nameEnd(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 0x7b || c === 0x20 || c === 0x09) return i
  }
  return line.length
}

const isBlank = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d

/** The sample whose name ends at `at`, or undefined when its labels or value are malformed. */
function sampleOf(line: string, name: string, at: number): PromSample | undefined {
  const labels: Record<string, string> = {}
  let i = at
  while (isBlank(line.charCodeAt(i))) i++
  if (line.charCodeAt(i) === 0x7b) {
    i = readLabels(line, i + 1, labels)
    if (i < 0) return undefined
    while (isBlank(line.charCodeAt(i))) i++
  }
  // The value is the first token after the name (which a blank ends) or the labels.
  const start = i
  while (i < line.length && !isBlank(line.charCodeAt(i))) i++
  if (i === start) return undefined
  const value = sampleValue(line.slice(start, i))
  return value === undefined ? undefined : { name, labels, value }
}

/**
 * Reads `name="value", ...}` from `from` (just past the `{`) into `labels`: the index past the `}`,
 * or -1 when the set is malformed. A trailing comma and blanks around the parts are allowed.
 */
function readLabels(line: string, from: number, labels: Record<string, string>): number {
  let i = from
  for (;;) {
    while (isBlank(line.charCodeAt(i))) i++
    if (line.charCodeAt(i) === 0x7d) return i + 1
    LABEL_NAME.lastIndex = i
    const label = LABEL_NAME.exec(line)
    if (!label) return -1
    i = LABEL_NAME.lastIndex
    while (isBlank(line.charCodeAt(i))) i++
    if (line.charCodeAt(i) !== 0x3d) return -1
    i++
    while (isBlank(line.charCodeAt(i))) i++
    if (line.charCodeAt(i) !== 0x22) return -1
    const start = ++i
    let escaped = false
    for (; i < line.length; i++) {
      const c = line.charCodeAt(i)
      if (c === 0x22) break
      if (c === 0x5c) {
        escaped = true
        i++ // the escaped character, a quote included
      }
    }
    if (i >= line.length) return -1
    const raw = line.slice(start, i)
    labels[label[0]] = escaped ? unescapeLabel(raw) : raw
    i++
    while (isBlank(line.charCodeAt(i))) i++
    const c = line.charCodeAt(i)
    if (c === 0x2c) i++
    else if (c !== 0x7d) return -1
  }
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
  return raw.replace(ESCAPE, (written, char: string) =>
    char === 'n' ? '\n' : char === '\\' || char === '"' ? char : written,
  )
}
