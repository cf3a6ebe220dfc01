import type { IncomingHttpHeaders } from 'node:http'
import { normalizeAddress } from './client-address.ts'

/** Request or response headers as undici takes them: lower-case names, repeats as arrays. */
export type OutgoingHeaders = Record<string, string | string[]>

/** Parsed headers (`req.headers`), a hand-built record, or Node's flat `rawHeaders` array. */
export type HeaderInput =
  | IncomingHttpHeaders
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | readonly string[]

/**
 * Fields that describe one connection and must not be forwarded (RFC 9110 §7.6.1), plus:
 * - `proxy-authorization` / `proxy-authenticate`: credentials and challenges for a proxy hop
 *   (RFC 9110 §11.7). Aya is the inbound gateway, so they were meant for it or for a forward
 *   proxy in front of it; relaying them would leak a proxy credential to every origin.
 *   Envoy and nginx pass them through; we choose not to leak.
 * - `trailer`: Aya re-frames bodies and does not forward trailers, so the announcement would lie.
 * - `http2-settings`: connection-specific by definition (RFC 7540 §3.2.1).
 * `te` goes too; gRPC's `te: trailers` will need revisiting if Aya proxies gRPC.
 * - `expect`: Aya answers a client's `100-continue` itself, before it reads the body (or refuses
 *   the body without it), so the expectation is met on this hop; undici refuses to send it on
 *   (curl adds it to any POST over 1 MiB, a long prompt).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
])

/**
 * Headers that claim who the client is. From a peer that is not a trusted proxy they are
 * forgeries waiting to be believed, so `appendForwarded` drops them before adding its own.
 */
const FORWARDING_CLAIM_NAMES: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'forwarded',
])

/**
 * A new header object without hop-by-hop fields, without every field the Connection header
 * names (all Connection values, comma-separated, any case), and without HTTP/2 pseudo-headers.
 * Names come out lower-case; repeated fields become arrays in order. Host is kept: the caller
 * decides about it. The object has no prototype, so a field called `__proto__` stays a field.
 *
 * Run this before any user rewrite, so a client cannot use Connection to strip what Aya adds.
 * Aya does not proxy protocol upgrades yet, so a request asking for one (WebSocket) is forwarded
 * as a plain request: its Upgrade goes with the other hop-by-hop fields.
 */
export function stripHopByHop(headers: HeaderInput): OutgoingHeaders {
  const out: OutgoingHeaders = Object.create(null)
  let listed: Set<string> | undefined
  if (isRawHeaders(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase()
      const value = headers[i + 1]!
      if (name === 'connection') listed = collectConnectionTokens(value, listed)
      else if (!isDropped(name)) addField(out, name, value)
    }
  } else {
    for (const rawName in headers) {
      const value = headers[rawName]
      if (value === undefined) continue
      const name = rawName.toLowerCase()
      if (name === 'connection') {
        if (typeof value === 'string') listed = collectConnectionTokens(value, listed)
        else for (const item of value) listed = collectConnectionTokens(item, listed)
      } else if (!isDropped(name)) {
        addField(out, name, value)
      }
    }
  }
  // Connection may come after the fields it names, so they go at the end. Usually it names
  // only hop-by-hop tokens (close, keep-alive, upgrade) and there is nothing to do.
  if (listed !== undefined) {
    for (const name of listed) delete out[name]
  }
  return out
}

function isRawHeaders(headers: HeaderInput): headers is readonly string[] {
  return Array.isArray(headers)
}

function isDropped(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.charCodeAt(0) === 0x3a /* HTTP/2 pseudo-header */
}

/**
 * Fields a client may not strip by naming them in Connection: they say what the message is and
 * where it goes, and the upstream needs them (HAProxy and nginx keep them too). Without this,
 * `Connection: host` sent a request routed by its Host to an upstream that never saw it.
 */
const NEVER_HOP: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-type',
  'content-encoding',
])

/** Adds the tokens of one Connection value that are not already hop-by-hop. */
function collectConnectionTokens(
  value: string,
  listedSoFar: Set<string> | undefined,
): Set<string> | undefined {
  let listed = listedSoFar
  let start = 0
  while (start <= value.length) {
    let end = value.indexOf(',', start)
    if (end === -1) end = value.length
    const token = value.slice(start, end).trim().toLowerCase()
    // `close` and `keep-alive` are the usual tokens; they allocate no set.
    if (token !== '' && token !== 'close' && !HOP_BY_HOP.has(token) && !NEVER_HOP.has(token)) {
      listed ??= new Set()
      listed.add(token)
    }
    start = end + 1
  }
  return listed
}

/** Never mutates an array it was given: input arrays may belong to the request. */
function addField(out: OutgoingHeaders, name: string, value: string | readonly string[]): void {
  const existing = out[name]
  if (existing === undefined) {
    out[name] = typeof value === 'string' ? value : [...value]
  } else if (typeof existing === 'string') {
    out[name] = typeof value === 'string' ? [existing, value] : [existing, ...value]
  } else if (typeof value === 'string') {
    existing.push(value)
  } else {
    existing.push(...value)
  }
}

export interface ForwardedOptions {
  /** Headers from `stripHopByHop`; changed in place. */
  readonly headers: OutgoingHeaders
  /**
   * The socket peer's address, the client of *this* hop: what X-Forwarded-For gets appended,
   * as nginx's `$proxy_add_x_forwarded_for`. '' (socket already gone) appends nothing.
   */
  readonly peerIp: string
  /** The client address resolved through trusted proxies; when given, sent as X-Real-IP. */
  readonly clientIp?: string
  /** The scheme the request arrived on at Aya. */
  readonly proto: 'http' | 'https'
  /** The Host (or :authority) the client asked for; omitted when the request had none. */
  readonly host: string | undefined
  /**
   * Whether the peer is a trusted proxy (see `createTrustedProxyMatcher`); only then are its
   * forwarding claims kept. Defaults to false, the safe answer when nobody said.
   */
  readonly trusted?: boolean
  /** The Via entry to append (RFC 9110 §7.6.3); false adds none. Default `1.1 aya`. */
  readonly via?: string | false
}

/**
 * The scheme the client used: a trusted proxy's X-Forwarded-Proto (the first, the client-facing
 * hop's, when it lists several), else the scheme it reached Aya on. An untrusted peer's claim, or
 * a value that is no scheme Aya knows, is ignored.
 */
export function clientProtoOf(
  headers: IncomingHttpHeaders,
  trusted: boolean,
  proto: 'http' | 'https',
): 'http' | 'https' {
  if (!trusted) return proto
  const claimed = headers['x-forwarded-proto']
  const first = (Array.isArray(claimed) ? claimed[0] : claimed)?.split(',', 1)[0]
  const scheme = first?.trim().toLowerCase()
  return scheme === 'https' || scheme === 'http' ? scheme : proto
}

/**
 * Adds Aya's hop to the forwarding headers, in place:
 * - from an untrusted peer, every forwarding claim (X-Forwarded-*, X-Real-IP, Forwarded, also
 *   spelled with `_`) is dropped first, since an origin that believed one could be lied to;
 * - X-Forwarded-For: the peer appended to the list a trusted peer sent, or alone otherwise;
 * - X-Forwarded-Proto / X-Forwarded-Host: a trusted peer's values are kept (it saw the original
 *   request), else set from this hop;
 * - X-Real-IP: the resolved client, when `clientIp` is given;
 * - Via: this hop appended to any existing entries.
 */
export function appendForwarded(options: ForwardedOptions): void {
  const { headers } = options
  if (options.trusted !== true) {
    // One pass over the fields. CGI-style upstreams (PHP, WSGI, Rack) read `X_Forwarded_For` as
    // `X-Forwarded-For`: both are HTTP_X_FORWARDED_FOR to them, so the spelling with underscores
    // is the same forgery.
    for (const name in headers) {
      const spelled = name.includes('_') ? name.replaceAll('_', '-') : name
      if (FORWARDING_CLAIM_NAMES.has(spelled)) delete headers[name]
    }
  }
  if (options.peerIp !== '') {
    const peer = normalizeAddress(options.peerIp)
    const forwardedFor = headers['x-forwarded-for']
    headers['x-forwarded-for'] =
      forwardedFor === undefined ? peer : `${joinValues(forwardedFor)}, ${peer}`
  }
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = options.proto
  if (headers['x-forwarded-host'] === undefined && options.host !== undefined) {
    headers['x-forwarded-host'] = options.host
  }
  if (options.clientIp !== undefined && options.clientIp !== '') {
    headers['x-real-ip'] = options.clientIp
  }
  const via = options.via ?? '1.1 aya'
  if (via !== false) {
    const existing = headers.via
    headers.via = existing === undefined ? via : `${joinValues(existing)}, ${via}`
  }
}

function joinValues(value: string | string[]): string {
  return typeof value === 'string' ? value : value.join(', ')
}
