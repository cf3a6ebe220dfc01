import type { ConfigIssue } from './config-error.ts'
import { describeSafely, formatPath } from './config-error.ts'
import { isDecimalText } from './env-numbers.ts'

/**
 * `$$`, a placeholder, or any other `${`: a mistyped placeholder (`${HOST`, `${PORT-8080}`, a
 * nested `${A:-${B}}`), which would otherwise stay in the value as literal text.
 */
const PLACEHOLDER = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^$}]|\$(?!\{))*))?\}|\$\{/g
const WHOLE_PLACEHOLDERS = /^(?:\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})+$/

export type Env = Readonly<Record<string, string | undefined>>

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed document. `$$` is a literal
 * dollar. A variable that is unset and has no default is an error, never an empty string.
 * A scalar made only of placeholders is typed after substitution (`port: ${PORT:-8080}` is a
 * number), and such an element of a list that comes out empty is dropped, so an unset optional
 * second API key does not become an empty key.
 */
export function substituteEnv(
  document: unknown,
  env: Env,
  issues: ConfigIssue[],
  /** Filled with the paths of placeholder-only values that stayed decimal strings (`0.90`). */
  decimalPaths?: Set<string>,
): unknown {
  return walk(document, { env, issues, decimalPaths }, [])
}

interface Walk {
  readonly env: Env
  readonly issues: ConfigIssue[]
  readonly decimalPaths: Set<string> | undefined
}

function walk(value: unknown, context: Walk, path: PropertyKey[]): unknown {
  const { issues } = context
  if (typeof value === 'string') return substituteString(value, context, path).value
  if (Array.isArray(value)) {
    const out: unknown[] = []
    value.forEach((item, index) => {
      if (typeof item === 'string') {
        const result = substituteString(item, context, [...path, index])
        if (result.wholePlaceholder && result.value === '') return
        out.push(result.value)
      } else {
        out.push(walk(item, context, [...path, index]))
      }
    })
    return out
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      // Assigned, `__proto__` would set the prototype and the key would vanish unchecked, here
      // or in any later `record[key] = ...` (the schema's maps): an upstream, a model or a
      // policy option so named would silently not exist.
      if (key === '__proto__') {
        issues.push({ path: formatPath([...path, key]), message: 'a key may not be "__proto__"' })
        continue
      }
      out[key] = walk(item, context, [...path, key])
    }
    return out
  }
  return value
}

function substituteString(
  text: string,
  { env, issues, decimalPaths }: Walk,
  path: PropertyKey[],
): { value: unknown; wholePlaceholder: boolean } {
  if (!text.includes('$')) return { value: text, wholePlaceholder: false }
  const substituted = text.replace(
    PLACEHOLDER,
    (match, name: string | undefined, fallback: string | undefined, offset: number) => {
      if (match === '$$') return '$'
      if (name === undefined) {
        // The placeholder up to its `}`, but never past a space nor 40 characters: the text up to
        // the next `}` may run on into a credential (`Bearer ${TOKEN sk-live-...`), and errors go
        // to logs.
        const written = `\${${/^[^}\s]{0,40}\}?/.exec(text.slice(offset + 2))![0]}`
        issues.push({
          path: formatPath(path),
          message: `${describeSafely(written, path.at(-1))} is not a placeholder: write \${VAR} or \${VAR:-default} (with no "\${" in the default), or $\${ for a literal "\${"`,
        })
        return match
      }
      const found = env[name!]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      if (found === '') return ''
      issues.push({
        path: formatPath(path),
        message: `environment variable ${name} is not set and has no default (write \${${name}:-default})`,
      })
      return ''
    },
  )
  const wholePlaceholder = WHOLE_PLACEHOLDERS.test(text)
  if (!wholePlaceholder) return { value: substituted, wholePlaceholder }
  const value = coerceScalar(substituted)
  if (typeof value === 'string' && isDecimalText(value)) decimalPaths?.add(formatPath(path))
  return { value, wholePlaceholder }
}

function coerceScalar(text: string): unknown {
  // Only a number that reads back as written: `007` or a 20-digit secret stays a string, since
  // as a number it would change (7, or the digits past 2^53 lost).
  if (/^-?\d+(\.\d+)?$/.test(text) && String(Number(text)) === text) return Number(text)
  if (text === 'true') return true
  if (text === 'false') return false
  return text
}
