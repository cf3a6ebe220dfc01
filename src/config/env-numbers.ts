import type { z } from 'zod'
import { formatPath, valueAt } from './config-error.ts'

/** A decimal number as people write one: `0.90`, `1e3`, `.5`, `+5`, `1.` too. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

/** Whether a placeholder-only value that stayed a string could still be meant as a number. */
export const isDecimalText = (text: string): boolean => DECIMAL.test(text)

/**
 * A placeholder-only value is typed as a number only when it reads back as written, so a string
 * setting keeps `007` or a 20-digit secret whole; `kvHighWater: ${KV:-0.90}` then stays the
 * string "0.90". Where the schema wanted a number there, this turns it into one: for each issue
 * of a string where a number was expected, at a path in `decimalPaths` (the placeholder-only
 * values that came out decimal, see `substituteEnv`), the value becomes its number. `base` is
 * the path of `document` in the whole config. True when it changed anything, so the caller parses
 * again.
 */
function coerceEnvNumbers(
  document: unknown,
  issues: readonly z.core.$ZodIssue[],
  decimalPaths: ReadonlySet<string>,
  base: readonly PropertyKey[] = [],
): boolean {
  let changed = false
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'number') continue
    if (!decimalPaths.has(formatPath([...base, ...issue.path]))) continue
    const parent = valueAt(document, issue.path.slice(0, -1))
    const key = issue.path.at(-1)
    if (parent === null || typeof parent !== 'object' || key === undefined) continue
    const text = (parent as Record<PropertyKey, unknown>)[key]
    if (typeof text !== 'string') continue
    const value = Number(text)
    // `1e999` stays the string it is, and the schema says so.
    if (!Number.isFinite(value)) continue
    ;(parent as Record<PropertyKey, unknown>)[key] = value
    changed = true
  }
  return changed
}

/**
 * `schema.safeParse(document)`, and once more after `coerceEnvNumbers` when that turned a
 * placeholder's decimal text into the number the schema wanted.
 */
export function safeParseWithEnvNumbers<T extends z.ZodType>(
  schema: T,
  document: unknown,
  decimalPaths: ReadonlySet<string>,
  base: readonly PropertyKey[] = [],
): ReturnType<T['safeParse']> {
  const parsed = schema.safeParse(document) as ReturnType<T['safeParse']>
  if (parsed.success || !coerceEnvNumbers(document, parsed.error.issues, decimalPaths, base)) {
    return parsed
  }
  return schema.safeParse(document) as ReturnType<T['safeParse']>
}
