/** One problem in a config file: where it is and what is wrong, e.g. `listeners[0].port: ...`. */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/** Thrown by the loader with every issue found, so a user fixes them all in one go. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'))
    this.name = 'ConfigError'
    this.issues = issues
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`
}

/** Renders a path like `upstreams.api.endpoints[1].weight`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$-]*$/.test(part))
      out += out ? `.${part}` : part
    else out += `[${JSON.stringify(String(part))}]`
  }
  return out
}

/** A short rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  // JSON has no Infinity or NaN (YAML's `.inf`, `.nan`): it would print them as null, at the
  // top or inside an object (`{"scrapeIntervalMs":null}` for `.inf`), hiding the bad value.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  const text = JSON.stringify(value, nonFiniteAsMarked)?.replace(NON_FINITE_MARKED, '$1')
  if (text === undefined) return String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** A non-finite number as a string JSON cannot otherwise hold, unquoted again afterwards. */
const NON_FINITE_MARK = '\u0000aya-non-finite:'
const NON_FINITE_MARKED = /"\\u0000aya-non-finite:(NaN|-?Infinity)"/g

function nonFiniteAsMarked(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? `${NON_FINITE_MARK}${value}` : value
}

interface ZodIssueLike {
  readonly code: string
  readonly path: readonly PropertyKey[]
  readonly message: string
  readonly keys?: readonly string[]
  /** What a bound applies to: `int` is the integer check's own range, ±(2^53 - 1). */
  readonly origin?: string
  /** An `invalid_key` issue's own: what was wrong with the key. */
  readonly issues?: readonly { readonly message: string }[]
}

/**
 * One issue per path: a value that fails several checks gets the most telling one. An integer
 * past 2^53 fails the integer check as well as its own bound (`expected at most 1000`), and
 * the bound says more; otherwise the first check to fail is reported.
 */
export function toConfigIssues(
  issues: readonly ZodIssueLike[],
  root: unknown,
  prefix: readonly PropertyKey[] = [],
): ConfigIssue[] {
  const byPath = new Map<string, ZodIssueLike>()
  for (const issue of issues) {
    const key = formatPath(issue.path)
    const kept = byPath.get(key)
    if (kept === undefined || (isUnsafeInteger(kept) && !isUnsafeInteger(issue))) {
      byPath.set(key, issue)
    }
  }
  return [...byPath.values()].map((issue) => toConfigIssue(issue, root, prefix))
}

function isUnsafeInteger(issue: ZodIssueLike): boolean {
  return (issue.code === 'too_big' || issue.code === 'too_small') && issue.origin === 'int'
}

/**
 * Turns a schema issue into Aya's wording: the full path, then what was expected and what was
 * found. `prefix` places a sub-document (such as one upstream's policyOptions) in the whole file.
 */
function toConfigIssue(
  issue: ZodIssueLike,
  root: unknown,
  prefix: readonly PropertyKey[],
): ConfigIssue {
  const path = formatPath([...prefix, ...issue.path])
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const plural = issue.keys.length > 1 ? 's' : ''
    return { path, message: `unknown key${plural} ${issue.keys.map((k) => `"${k}"`).join(', ')}` }
  }
  // The path ends at the key, and the value under it is not what is wrong.
  if (issue.code === 'invalid_key') {
    const key = issue.path.at(-1)
    const expected = issue.issues?.[0]?.message ?? 'expected a valid key'
    return { path, message: `${expected} as the key, got ${describeValue(String(key))}` }
  }
  const value = valueAt(root, issue.path)
  if (value === undefined) return { path, message: `${issue.message}, but it is missing` }
  return { path, message: `${issue.message}, got ${describeSafely(value, issue.path.at(-1))}` }
}

/** Keys whose values are credentials: an error names their length, never their text. */
const SECRET_KEY = /secret|password|token|api_?key|authorization|cookie|credential/i

/**
 * `describeValue` for a value that may be a credential: config errors go to stderr and into CI
 * logs, and a secret that fails its check (too short, a URL that does not parse) is still the
 * operator's real secret. A secret-named key's value is reduced to its length, and a URL's
 * password is masked.
 */
export function describeSafely(value: unknown, key: PropertyKey | undefined): string {
  if (typeof value === 'string' && typeof key === 'string' && SECRET_KEY.test(key)) {
    return `a value of ${value.length} characters (not shown)`
  }
  if (typeof value === 'string') return describeValue(maskPassword(value))
  return describeValue(value)
}

function maskPassword(text: string): string {
  // `scheme://user:password@host`: the userinfo's password part, whether or not the URL parses;
  // and a `?password=` query, which a Redis URL refuses but an operator may well have written.
  return text
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, '$1***@')
    .replace(/([?&][^=&#]*(?:secret|password|token|api_?key)[^=&#]*=)[^&#]*/gi, '$1***')
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[part]
  }
  return value
}
