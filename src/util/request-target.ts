/** A request target's path: everything before the query string. */
export function pathOf(target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? target : target.slice(0, queryAt)
}

/** A request target's query string with its `?`, or '' when it has none. */
export function queryOf(target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? '' : target.slice(queryAt)
}

/** `http://authority/path?query`: the authority, then the rest (which may be empty). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)$/i

/** An absolute-form request target, split as a server takes it. */
export interface AbsoluteForm {
  /** What replaces the request's Host (RFC 9112 §3.2.2): not checked here to be one. */
  readonly authority: string
  /** Its path and query in origin form (`http://a?q` is `/?q`). */
  readonly originForm: string
}

/**
 * A server must accept the absolute-form too (RFC 9112 §3.2.2): a client that takes Aya for a
 * forward proxy sends one. undefined for any other target that is not a path (`*`, an authority).
 */
export function absoluteFormOf(target: string): AbsoluteForm | undefined {
  const match = ABSOLUTE_FORM.exec(target)
  if (match === null) return undefined
  const rest = match[2]!
  return { authority: match[1]!, originForm: rest.startsWith('/') ? rest : `/${rest}` }
}

/**
 * A target's `scheme://`, if it has one, and the userinfo of its authority (up to the authority's
 * last `@`).
 */
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^/?#]*@/

/**
 * The target as it may be logged: the userinfo of an absolute-form one
 * (`http://user:password@host/`) or of a CONNECT's authority-form one (`user:password@host:443`,
 * which Node parses) is a credential, which Aya never forwards (such a target is refused) but
 * would otherwise write to the access log. The rest stays as the client sent it. An origin-form
 * target, the common case, is returned as is.
 */
export function loggableTarget(target: string): string {
  if (target.charCodeAt(0) === 47 /* '/' */ || !target.includes('@')) return target
  return target.replace(USERINFO, '$1***@')
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * A path as RFC 3986 §6.2.2 normalizes it: percent-encoded unreserved characters decoded (`%61`
 * is `a`), and `.` and `..` segments removed (§5.2.4), as Envoy's `normalize_path` and nginx's
 * location matching do. Reserved characters stay encoded (`%2F` is not a `/`), and repeated
 * slashes stay. Routes match the normalized path, and the upstream is sent it, so a deny route on
 * `/admin` cannot be passed by `/x/../admin` or `/%61dmin`, nor a rewrite escaped by `..`.
 * Returns the same string when there is nothing to do, which is the common case.
 */
export function normalizePath(path: string): string {
  if (!path.includes('%') && !path.includes('/.')) return path
  return removeDotSegments(decodeUnreserved(path))
}

function decodeUnreserved(path: string): string {
  if (!path.includes('%')) return path
  return path.replace(/%([0-9A-Fa-f]{2})/g, (encoded: string, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16))
    return UNRESERVED.test(char) ? char : encoded.toUpperCase()
  })
}

function removeDotSegments(path: string): string {
  if (!path.includes('/.')) return path
  const output: string[] = []
  const segments = path.split('/')
  // A leading '' (the path starts with '/') stays; `..` never climbs above it.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!
    const isLast = i === segments.length - 1
    if (segment === '.') {
      if (isLast) output.push('')
    } else if (segment === '..') {
      output.pop()
      if (isLast) output.push('')
    } else {
      output.push(segment)
    }
  }
  return `/${output.join('/')}`
}
