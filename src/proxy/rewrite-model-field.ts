const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d

/**
 * Replaces the value of the top-level `"model"` member of a JSON object with `model`, keeping every
 * other byte as sent. Re-serialising the parsed body instead would change what the client meant:
 * a 64-bit `seed` loses precision, `1e400` becomes null, key order and spacing change.
 *
 * `json` must already be known to parse (the gateway parsed it). The scan works on UTF-8 bytes:
 * every structural character is ASCII and no byte of a multi-byte character is, so it never needs
 * to decode. Keys are compared decoded, so `"mod\u0065l"` counts; a `"model"` key inside a nested
 * object or a string does not. Every top-level `model` member is replaced, so a duplicate key reads
 * the same whichever one a parser keeps. Returns undefined when there is none or the input is not
 * an object.
 */
export function rewriteModelField(json: Buffer, model: string): Buffer | undefined {
  const spans: Array<readonly [number, number]> = []
  let i = skipSpace(json, 0)
  if (json[i] !== OPEN_OBJECT) return undefined
  i = skipSpace(json, i + 1)
  if (json[i] === CLOSE_OBJECT) return undefined
  for (;;) {
    if (json[i] !== QUOTE) return undefined
    const keyEnd = stringEnd(json, i)
    if (keyEnd < 0) return undefined
    const isModel = keyIs(json, i, keyEnd, 'model')
    i = skipSpace(json, keyEnd)
    if (json[i] !== COLON) return undefined
    const valueStart = skipSpace(json, i + 1)
    const valueEnd = valueEndAt(json, valueStart)
    if (valueEnd < 0) return undefined
    if (isModel) spans.push([valueStart, valueEnd])
    i = skipSpace(json, valueEnd)
    if (json[i] === CLOSE_OBJECT) break
    if (json[i] !== COMMA) return undefined
    i = skipSpace(json, i + 1)
  }
  if (spans.length === 0) return undefined
  const replacement = Buffer.from(JSON.stringify(model))
  const parts: Buffer[] = []
  let from = 0
  for (const [start, end] of spans) {
    parts.push(json.subarray(from, start), replacement)
    from = end
  }
  parts.push(json.subarray(from))
  return Buffer.concat(parts)
}

function skipSpace(json: Buffer, from: number): number {
  let i = from
  while (i < json.length) {
    const c = json[i]
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break
    i++
  }
  return i
}

/** The index just past the closing quote of the string opening at `start`, or -1. */
function stringEnd(json: Buffer, start: number): number {
  for (let i = start + 1; i < json.length; i++) {
    const c = json[i]
    if (c === BACKSLASH) i++
    else if (c === QUOTE) return i + 1
  }
  return -1
}

function keyIs(json: Buffer, start: number, end: number, name: string): boolean {
  const raw = json.subarray(start, end)
  // The common case, without escapes, needs no decoding.
  if (raw.indexOf(BACKSLASH) < 0)
    return raw.length === name.length + 2 && raw.toString('latin1', 1, raw.length - 1) === name
  return JSON.parse(raw.toString('utf8')) === name
}

/** The index just past the value starting at `start`, or -1. */
function valueEndAt(json: Buffer, start: number): number {
  const first = json[start]
  if (first === QUOTE) return stringEnd(json, start)
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0
    for (let i = start; i < json.length; i++) {
      const c = json[i]
      if (c === QUOTE) {
        i = stringEnd(json, i) - 1
        if (i < 0) return -1
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++
      else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        depth--
        if (depth === 0) return i + 1
      }
    }
    return -1
  }
  // A number, true, false or null: runs to the next delimiter.
  let i = start
  while (i < json.length) {
    const c = json[i]
    if (c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY) break
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) break
    i++
  }
  return i > start ? i : -1
}
