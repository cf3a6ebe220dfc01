/**
 * Finds `"usage": {...}` objects in JSON text fed to it piece by piece, without holding the text:
 * only a key split across pieces and the usage object itself (bounded) are kept. This is how usage
 * is read from a response body of any size (OpenAI puts it at the end of chat, completion and
 * embedding bodies, whose data before it can run to megabytes) and from streamed events, one event
 * at a time. Inside a JSON string every quote is escaped, so an unescaped `"usage"` followed by a
 * colon is a key, whatever surrounds it.
 */
export interface UsageObjectScanner {
  write(text: string): void
  /** The current document ended (an SSE event was dispatched): drop anything half-read. */
  reset(): void
}

const KEY = '"usage"'
const SEARCH = 0
const AFTER_KEY = 1
const AFTER_COLON = 2
const CAPTURE = 3

export function createUsageObjectScanner(
  onUsage: (usage: Readonly<Record<string, unknown>>) => void,
  options: { readonly maxObjectChars?: number } = {},
): UsageObjectScanner {
  const maxObjectChars = options.maxObjectChars ?? 4096
  let state = SEARCH
  /** In SEARCH: the last few characters, for a key split across pieces. */
  let tail = ''
  let captured = ''
  let depth = 0
  let inString = false
  let escaped = false

  const search = (text: string, from: number): number => {
    const joined = tail + text.slice(from, from + KEY.length - 1)
    const split = tail === '' ? -1 : joined.indexOf(KEY)
    const at = split !== -1 ? split - tail.length : text.indexOf(KEY, from)
    if (at === -1 && split === -1) {
      tail = (tail + text.slice(Math.max(from, text.length - KEY.length + 1))).slice(
        -(KEY.length - 1),
      )
      return text.length
    }
    tail = ''
    state = AFTER_KEY
    return at + KEY.length
  }

  const capture = (text: string, from: number): number => {
    // Usage objects are a few hundred characters: anything longer is not one worth reading.
    const end = Math.min(text.length, from + maxObjectChars - captured.length + 1)
    let i = from
    for (; i < end; i++) {
      const code = text.charCodeAt(i)
      if (inString) {
        if (escaped) escaped = false
        else if (code === 0x5c) escaped = true
        else if (code === 0x22) inString = false
      } else if (code === 0x22) {
        inString = true
      } else if (code === 0x7b) {
        depth++
      } else if (code === 0x7d && --depth === 0) {
        captured += text.slice(from, i + 1)
        state = SEARCH
        parse(captured)
        captured = ''
        return i + 1
      }
    }
    captured += text.slice(from, i)
    if (captured.length > maxObjectChars) reset()
    return i
  }

  const parse = (text: string): void => {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return
    }
    if (value && typeof value === 'object') onUsage(value as Record<string, unknown>)
  }

  const reset = (): void => {
    state = SEARCH
    tail = ''
    captured = ''
  }

  return {
    reset,
    write(text) {
      let i = 0
      while (i < text.length) {
        if (state === SEARCH) {
          i = search(text, i)
        } else if (state === CAPTURE) {
          i = capture(text, i)
        } else {
          const code = text.charCodeAt(i)
          if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) {
            i++
          } else if (state === AFTER_KEY && code === 0x3a) {
            state = AFTER_COLON
            i++
          } else if (state === AFTER_COLON && code === 0x7b) {
            state = CAPTURE
            captured = '{'
            depth = 1
            inString = false
            escaped = false
            i++
          } else {
            // `"usage": null`, or `"usage"` as a value: not an object; look on from here.
            state = SEARCH
          }
        }
      }
    },
  }
}
