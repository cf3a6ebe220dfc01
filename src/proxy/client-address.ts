import { BlockList, isIP } from 'node:net'

/**
 * Resolves the client address from the socket peer and X-Forwarded-For, trusting XFF only as far
 * as a chain of trusted proxies vouches for it (nginx `real_ip_recursive on`, Envoy trusted hops):
 *
 * - peer missing (socket gone) → '' (callers treat it as "no address");
 * - peer not trusted → the peer; XFF is ignored, since anyone can send it;
 * - peer trusted → walk XFF right to left, skipping trusted addresses; the first untrusted one is
 *   the client. If every entry is trusted, the leftmost is.
 * - An entry that is not an IP address stops the walk, and the client is the last address that
 *   was vouched for: the trusted hop that relayed the garbage. Garbage can therefore never steer
 *   the result to an address of the sender's choosing; at worst the client is attributed to its
 *   proxy. Entries may carry a port (`1.2.3.4:80`, `[::1]:80`), which is dropped.
 *
 * Addresses come back normalised: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as plain IPv4, IPv6 in
 * lower case, so one client has one key whichever way its address arrived.
 */
export type ClientAddressResolver = (
  remoteAddress: string | undefined,
  xForwardedFor: string | string[] | undefined,
) => string

export function createClientAddressResolver(
  trustedProxies: readonly string[],
): ClientAddressResolver {
  if (trustedProxies.length === 0) {
    return (remoteAddress) => (remoteAddress === undefined ? '' : normalizeAddress(remoteAddress))
  }
  const isTrusted = createTrustedProxyMatcher(trustedProxies)

  return (remoteAddress, xForwardedFor) => {
    if (remoteAddress === undefined) return ''
    let client = normalizeAddress(remoteAddress)
    if (xForwardedFor === undefined || !isTrusted(client)) return client
    // Node joins repeated XFF lines with ", " already; arrays come only from hand-built headers.
    const list = typeof xForwardedFor === 'string' ? xForwardedFor : xForwardedFor.join(',')
    let end = list.length
    while (end !== -1) {
      const comma = end === 0 ? -1 : list.lastIndexOf(',', end - 1)
      const address = parseForwardedAddress(list.slice(comma + 1, end))
      if (address === undefined) return client
      client = address
      if (!isTrusted(address)) return address
      end = comma
    }
    return client
  }
}

/**
 * Whether an address (socket peer or XFF entry, IPv4-mapped or not) falls in a trusted range.
 * Throws a TypeError naming the first invalid entry; config validation uses `validateCidr` first.
 */
export function createTrustedProxyMatcher(
  trustedProxies: readonly string[],
): (address: string | undefined) => boolean {
  if (trustedProxies.length === 0) return () => false
  const trusted = new BlockList()
  for (const text of trustedProxies) {
    const cidr = parseCidr(text)
    if (typeof cidr === 'string') throw new TypeError(`invalid trusted proxy: ${cidr}`)
    trusted.addSubnet(cidr.address, cidr.prefix, cidr.family)
  }
  return (address) =>
    address !== undefined &&
    address !== '' &&
    trusted.check(address, address.includes(':') ? 'ipv6' : 'ipv4')
}

/** An error message for a trusted-proxy entry (`10.0.0.0/8`, `::1`, `fd00::/8`), or undefined. */
export function validateCidr(text: string): string | undefined {
  const cidr = parseCidr(text)
  return typeof cidr === 'string' ? cidr : undefined
}

interface Cidr {
  readonly address: string
  readonly prefix: number
  readonly family: 'ipv4' | 'ipv6'
}

function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  if (address.includes('%')) return `"${text}": zone indexes (%) are not supported`
  const version = isIP(address)
  if (version === 0) return `"${text}" is not an IP address or CIDR range`
  const family = version === 4 ? 'ipv4' : 'ipv6'
  const maxPrefix = version === 4 ? 32 : 128
  if (slash === -1) return { address, prefix: maxPrefix, family }
  const prefixText = text.slice(slash + 1)
  const prefix = isDigits(prefixText) && prefixText.length <= 3 ? Number(prefixText) : Number.NaN
  if (!(prefix >= 0 && prefix <= maxPrefix)) {
    return `"${text}": the prefix length must be a whole number from 0 to ${maxPrefix}`
  }
  return { address, prefix, family }
}

/** One XFF entry as an address, or undefined when it is not one. */
function parseForwardedAddress(raw: string): string | undefined {
  const entry = raw.trim()
  if (isIP(entry) !== 0) return normalizeAddress(entry)
  if (entry.charCodeAt(0) === 0x5b /* [ */) {
    const close = entry.indexOf(']')
    if (close === -1 || (close + 1 < entry.length && !isPortSuffix(entry, close + 1))) {
      return undefined
    }
    const inner = entry.slice(1, close)
    return isIP(inner) === 6 ? normalizeAddress(inner) : undefined
  }
  const colon = entry.indexOf(':')
  if (colon === -1 || !isPortSuffix(entry, colon)) return undefined
  const host = entry.slice(0, colon)
  return isIP(host) === 4 ? host : undefined
}

/** `:` then a port number (0–65535), to the end of the text. */
function isPortSuffix(text: string, colon: number): boolean {
  if (text.charCodeAt(colon) !== 0x3a) return false
  const digits = text.length - colon - 1
  return (
    digits >= 1 &&
    digits <= 5 &&
    isDigits(text, colon + 1) &&
    Number(text.slice(colon + 1)) <= 65_535
  )
}

function isDigits(text: string, from = 0): boolean {
  if (from >= text.length) return false
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x30 || code > 0x39) return false
  }
  return true
}

const MAPPED_PREFIXES = ['::ffff:', '0:0:0:0:0:ffff:'] as const

/**
 * IPv4-mapped IPv6 becomes plain IPv4 (dual-stack sockets report `::ffff:a.b.c.d`); other IPv6 is
 * lower-cased. Anything else is returned unchanged.
 */
export function normalizeAddress(address: string): string {
  if (!address.includes(':')) return address
  const lower = address.toLowerCase()
  for (const prefix of MAPPED_PREFIXES) {
    if (!lower.startsWith(prefix)) continue
    const rest = lower.slice(prefix.length)
    if (isIP(rest) === 4) return rest
    const ipv4 = hexPairToIPv4(rest)
    if (ipv4 !== undefined) return ipv4
  }
  return lower
}

/** `a00:1` → `10.0.0.1`: the hex spelling of the mapped IPv4 part. */
function hexPairToIPv4(text: string): string | undefined {
  const colon = text.indexOf(':')
  if (colon < 1 || colon > 4 || text.length - colon - 1 < 1 || text.length - colon - 1 > 4) {
    return undefined
  }
  const high = Number.parseInt(text.slice(0, colon), 16)
  const low = Number.parseInt(text.slice(colon + 1), 16)
  if (!isHex(text, 0, colon) || !isHex(text, colon + 1, text.length)) return undefined
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
}

function isHex(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i)
    const isDigit = code >= 0x30 && code <= 0x39
    const isLetter = code >= 0x61 && code <= 0x66
    if (!isDigit && !isLetter) return false
  }
  return true
}
