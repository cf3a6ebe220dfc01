import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import type { Clock } from '../util/clock.ts'

export interface StickyCookieOptions {
  readonly name: string
  /** How long a binding holds, ms. Enforced by the signed expiry, not only by Max-Age. */
  readonly ttlMs: number
  /** HMAC key; at least 16 characters. `generateStickySecret()` makes a good one. */
  readonly secret: string
  readonly path?: string
  readonly secure?: boolean
  readonly sameSite?: 'Strict' | 'Lax' | 'None'
}

export interface StickyCookie {
  readonly name: string
  /** A signed cookie value binding the client to `endpointId` until the TTL runs out. */
  encode(endpointId: string): string
  /** The endpoint id, if the value is well formed, correctly signed and unexpired. Never throws. */
  decode(value: string): string | undefined
  /** What `decode` reads, with the value's signed expiry (wall-clock epoch ms). */
  decodeBinding(value: string): StickyCookieBinding | undefined
  /** A complete Set-Cookie header value carrying `encode(endpointId)`. */
  setCookieHeader(endpointId: string): string
}

export interface StickyCookieBinding {
  readonly endpointId: string
  readonly expiresAtMs: number
}

/** Shorter keys make a captured cookie brute-forceable offline; config validation should use it. */
export const MIN_STICKY_SECRET_CHARS = 16
/** base64url of a 32-byte SHA-256 MAC, unpadded. */
const MAC_CHARS = 43
/** The synthetic IV that leads the encrypted endpoint id. */
const IV_BYTES = 16
/** Far beyond any epoch-ms expiry this code will write; bounds the parse. */
const MAX_EXPIRY_DIGITS = 15
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Any CTL or ';' would end the attribute early or smuggle another one in.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE_PATH = /[\u0000-\u001f\u007f;]/

/**
 * The name of an upstream group's sticky cookie when the config gives none: `aya_sticky_<group>`.
 * One name per group, so that the groups behind one split route (or two routes one client uses)
 * each keep their own binding instead of overwriting one shared cookie at every switch. A byte
 * a cookie name cannot hold, and `%` itself, is written `%XX`, so two groups never share a name.
 */
export function defaultStickyCookieName(upstream: string): string {
  let suffix = ''
  for (const byte of Buffer.from(upstream, 'utf8')) {
    const char = String.fromCharCode(byte)
    suffix +=
      byte < 0x80 && char !== '%' && COOKIE_NAME.test(char)
        ? char
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return `aya_sticky_${suffix}`
}

/** 32 random bytes as base64url: a fresh HMAC key for sticky cookies. */
export function generateStickySecret(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Signed, expiring sticky-session cookies. The value is `id.expiry.mac` where id is the endpoint
 * id encrypted (AES-256-CTR under a key derived from the secret, with a synthetic IV: the HMAC of
 * the id, so one endpoint always gets one value) in base64url, expiry is wall-clock epoch ms
 * (cookies outlive processes, so monotonic time will not do), and mac is HMAC-SHA256 over the
 * cookie name, id and expiry. The id is encrypted because it is usually `host:port`: like nginx's
 * hashed sticky cookie, the cookie must not tell clients where the backends are. Binding the name
 * in means a value minted for one sticky cookie is not accepted by another that shares the secret.
 */
export function createStickyCookie(
  options: StickyCookieOptions,
  deps: { readonly clock: Clock },
): StickyCookie {
  const { name, ttlMs, secret } = options
  const path = options.path ?? '/'
  const sameSite = options.sameSite ?? 'Lax'
  const isSecure = options.secure ?? false
  if (!COOKIE_NAME.test(name)) throw new TypeError(`sticky cookie name "${name}" is not a token`)
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new RangeError(`sticky cookie ttlMs must be a positive finite number, got ${ttlMs}`)
  }
  if (secret.length < MIN_STICKY_SECRET_CHARS) {
    throw new RangeError(
      `sticky cookie secret must be at least ${MIN_STICKY_SECRET_CHARS} characters`,
    )
  }
  if (!path.startsWith('/') || UNSAFE_PATH.test(path)) {
    throw new TypeError(`sticky cookie path "${path}" must start with / and hold no ; or controls`)
  }
  // Browsers drop SameSite=None cookies that are not Secure, so stickiness would silently fail.
  if (sameSite === 'None' && !isSecure) {
    throw new TypeError('sticky cookie with sameSite None must also be secure')
  }

  const key: KeyObject = createSecretKey(Buffer.from(secret, 'utf8'))
  const macPrefix = `${name}\n`
  const attributes =
    `; Path=${path}; Max-Age=${Math.ceil(ttlMs / 1000)}; HttpOnly; SameSite=${sameSite}` +
    (isSecure ? '; Secure' : '')

  const sign = (payload: string) =>
    createHmac('sha256', key).update(macPrefix).update(payload).digest('base64url')
  const cipherKey = createHmac('sha256', key).update('aya sticky cookie id encryption').digest()
  const sealId = (endpointId: string): string => {
    const iv = createHmac('sha256', cipherKey).update(endpointId).digest().subarray(0, IV_BYTES)
    const cipher = createCipheriv('aes-256-ctr', cipherKey, iv)
    const sealed = Buffer.concat([iv, cipher.update(endpointId, 'utf8'), cipher.final()])
    return sealed.toString('base64url')
  }
  const openId = (text: string): string => {
    const sealed = Buffer.from(text, 'base64url')
    const decipher = createDecipheriv('aes-256-ctr', cipherKey, sealed.subarray(0, IV_BYTES))
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES)), decipher.final()]).toString(
      'utf8',
    )
  }

  const encode = (endpointId: string) => {
    const expiresAtMs = Math.floor(deps.clock.wallNow() + ttlMs)
    const payload = `${sealId(endpointId)}.${expiresAtMs}`
    return `${payload}.${sign(payload)}`
  }

  const decodeBinding = (value: string): StickyCookieBinding | undefined => {
    try {
      const macDot = value.lastIndexOf('.')
      const expiryDot = macDot > 0 ? value.lastIndexOf('.', macDot - 1) : -1
      if (expiryDot < 1 || value.length - macDot - 1 !== MAC_CHARS) return undefined
      const expiryText = value.slice(expiryDot + 1, macDot)
      if (!isDigits(expiryText) || expiryText.length > MAX_EXPIRY_DIGITS) return undefined
      const payload = value.slice(0, macDot)
      const given = Buffer.from(value.slice(macDot + 1), 'utf8')
      const expected = Buffer.from(sign(payload), 'utf8')
      // Equal lengths are required by timingSafeEqual; a non-ASCII MAC changes the byte count.
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
      const expiresAtMs = Number(expiryText)
      if (expiresAtMs <= deps.clock.wallNow()) return undefined
      return { endpointId: openId(value.slice(0, expiryDot)), expiresAtMs }
    } catch {
      return undefined
    }
  }

  return {
    name,
    encode,
    decode: (value) => decodeBinding(value)?.endpointId,
    decodeBinding,
    setCookieHeader: (endpointId) => `${name}=${encode(endpointId)}${attributes}`,
  }
}

function isDigits(text: string): boolean {
  if (text === '') return false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x30 || code > 0x39) return false
  }
  return true
}
