import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { unescape as unescapeQuery } from 'node:querystring'
import { z } from 'zod'

/**
 * Which part of a request identifies "the same client" for hashing, sticky sessions, rate limits
 * and affinity. One selector type and one extractor, so every feature reads keys the same way.
 */
export type KeySelector =
  | { readonly header: string }
  | { readonly cookie: string }
  | { readonly query: string }
  | { readonly ip: true }
  | { readonly route: true }
  | { readonly apiKey: true }

export interface KeySource {
  readonly headers: IncomingHttpHeaders
  /** Path and query string as received. */
  readonly path: string
  /** The resolved client address (see client-address.ts), not necessarily the socket peer. */
  readonly clientIp: string
  readonly routeName: string
}

/** Returns the key, or undefined when the request has none. Empty values count as none. */
export type KeyExtractor = (source: KeySource) => string | undefined

/** Hex characters kept of an API key's SHA-256: 64 bits, ample to keep keys apart. */
const API_KEY_DIGEST_HEX_CHARS = 16

export function createKeyExtractor(selector: KeySelector): KeyExtractor {
  if ('header' in selector) {
    const name = selector.header.toLowerCase()
    return (source) => nonEmpty(firstHeader(source.headers[name]))
  }
  if ('cookie' in selector) {
    const name = selector.cookie
    return (source) => nonEmpty(findCookie(source.headers.cookie, name))
  }
  if ('query' in selector) {
    const name = selector.query
    return (source) => nonEmpty(findQueryParam(source.path, name))
  }
  if ('ip' in selector) return (source) => nonEmpty(source.clientIp)
  if ('route' in selector) return (source) => nonEmpty(source.routeName)
  return (source) => {
    const secret = findApiKey(source.headers)
    return secret === undefined ? undefined : digestApiKey(secret)
  }
}

/** A short SHA-256 digest: keys stay distinct without the secret reaching state or logs. */
export function digestApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, API_KEY_DIGEST_HEX_CHARS)
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

/**
 * Node already joins most repeated headers with ", "; the joined value is used whole, because a
 * single value may itself contain commas. Only headers Node keeps as arrays yield their first.
 */
function firstHeader(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0]
}

/** RFC 6265 §5.2 leniency: optional whitespace around names, values and `;` separators. */
function isCookieSpace(code: number): boolean {
  return code === 0x20 || code === 0x09
}

/** The first cookie called `name` (case-sensitive), unquoted. Scans without splitting. */
export function findCookie(
  header: string | string[] | undefined,
  name: string,
): string | undefined {
  if (header === undefined) return undefined
  if (typeof header !== 'string') {
    // HTTP/2 may deliver one cookie header per crumb (RFC 9113 §8.2.3).
    for (const part of header) {
      const value = findCookie(part, name)
      if (value !== undefined) return value
    }
    return undefined
  }
  const length = header.length
  let start = 0
  // One charCode pass per crumb, finding its ';' and first '=' together. (An indexOf-based scan
  // went quadratic on a long run of crumbs without '=' once V8 optimised it.)
  while (start < length) {
    let eq = -1
    let end = start
    for (; end < length; end++) {
      const code = header.charCodeAt(end)
      if (code === 0x3b) break
      if (code === 0x3d && eq === -1) eq = end
    }
    if (eq !== -1) {
      let nameStart = start
      let nameEnd = eq
      while (nameStart < nameEnd && isCookieSpace(header.charCodeAt(nameStart))) nameStart++
      while (nameEnd > nameStart && isCookieSpace(header.charCodeAt(nameEnd - 1))) nameEnd--
      if (nameEnd - nameStart === name.length && header.startsWith(name, nameStart)) {
        let valueStart = eq + 1
        let valueEnd = end
        while (valueStart < valueEnd && isCookieSpace(header.charCodeAt(valueStart))) valueStart++
        while (valueEnd > valueStart && isCookieSpace(header.charCodeAt(valueEnd - 1))) valueEnd--
        if (
          valueEnd - valueStart >= 2 &&
          header.charCodeAt(valueStart) === 0x22 &&
          header.charCodeAt(valueEnd - 1) === 0x22
        ) {
          valueStart++
          valueEnd--
        }
        return header.slice(valueStart, valueEnd)
      }
    }
    start = end + 1
  }
  return undefined
}

/**
 * The first value of query parameter `name`, decoded as application/x-www-form-urlencoded
 * (`+` is a space; malformed escapes are kept, never thrown), matching URLSearchParams.get.
 */
export function findQueryParam(path: string, name: string): string | undefined {
  const queryStart = path.indexOf('?')
  if (queryStart === -1) return undefined
  const length = path.length
  let start = queryStart + 1
  // One charCode pass per pair, as in findCookie.
  while (start <= length) {
    let eq = -1
    let end = start
    for (; end < length; end++) {
      const code = path.charCodeAt(end)
      if (code === 0x26) break
      if (code === 0x3d && eq === -1) eq = end
    }
    if (end > start) {
      const nameEnd = eq === -1 ? end : eq
      const rawName = path.slice(start, nameEnd)
      if (rawName === name || decodeFormComponent(rawName) === name) {
        return nameEnd === end ? '' : decodeFormComponent(path.slice(nameEnd + 1, end))
      }
    }
    start = end + 1
  }
  return undefined
}

function decodeFormComponent(text: string): string {
  const hasPlus = text.includes('+')
  if (!hasPlus && !text.includes('%')) return text
  return unescapeQuery(hasPlus ? text.replaceAll('+', ' ') : text)
}

/** Authorization: Bearer first (OpenAI style), then x-api-key (Anthropic), then api-key (Azure). */
export function findApiKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization
  if (authorization !== undefined && authorization.length > 7) {
    // The auth-scheme is case-insensitive (RFC 9110 §11.1).
    if (authorization.slice(0, 7).toLowerCase() === 'bearer ') {
      const token = authorization.slice(7).trim()
      if (token !== '') return token
    }
  }
  return (
    nonEmpty(firstHeader(headers['x-api-key'])?.trim()) ??
    nonEmpty(firstHeader(headers['api-key'])?.trim())
  )
}

/** RFC 9110 §5.6.2 token: what header and cookie names are made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const SELECTOR_FIELDS = ['header', 'cookie', 'query', 'ip', 'route', 'apiKey'] as const
const FIELD_RULES: Record<string, string> = {
  header: 'must be a header name (a non-empty HTTP token)',
  cookie: 'must be a cookie name (a non-empty HTTP token)',
  query: 'must be a non-empty query parameter name',
  ip: 'must be true',
  route: 'must be true',
  apiKey: 'must be true',
}

const tokenName = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .regex(TOKEN, {
      error: `${what} must be a valid HTTP token (letters, digits, !#$%&'*+-.^_\`|~)`,
    })

const flag = (field: string) => z.literal(true, { error: `'${field}' must be true` })

/** Says which rule an invalid selector broke, since a plain union only says "invalid input". */
function describeSelectorError(input: unknown): string {
  const expected = `one of ${SELECTOR_FIELDS.map((f) => `'${f}'`).join(', ')}`
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return `a key selector must be an object with exactly ${expected}`
  }
  const fields = Object.keys(input)
  const unknown = fields.filter((f) => !(SELECTOR_FIELDS as readonly string[]).includes(f))
  if (unknown.length > 0) {
    return `unknown key selector field ${unknown.map((f) => `'${f}'`).join(', ')}; use exactly ${expected}`
  }
  if (fields.length === 0) return `a key selector needs exactly ${expected}`
  const [field] = fields
  if (fields.length === 1 && field !== undefined) return `'${field}' ${FIELD_RULES[field]}`
  return `a key selector takes exactly one field, got ${fields.map((f) => `'${f}'`).join(' and ')}`
}

/** Config schema for a KeySelector: exactly one field, e.g. `{ header: 'x-user-id' }`. */
export const keySelectorSchema = z.union(
  [
    z.object({ header: tokenName('header name') }).strict(),
    z.object({ cookie: tokenName('cookie name') }).strict(),
    z
      .object({
        query: z
          .string({ error: 'query parameter name must be a string' })
          .min(1, { error: 'query parameter name must not be empty' }),
      })
      .strict(),
    z.object({ ip: flag('ip') }).strict(),
    z.object({ route: flag('route') }).strict(),
    z.object({ apiKey: flag('apiKey') }).strict(),
  ],
  { error: (issue) => describeSelectorError(issue.input) },
)

// Keeps the schema and the hand-written type from drifting apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const schemaMatchesType: Same<z.output<typeof keySelectorSchema>, KeySelector> = true
void schemaMatchesType
