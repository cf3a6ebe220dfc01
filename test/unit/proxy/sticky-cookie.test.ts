import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createStickyCookie,
  defaultStickyCookieName,
  generateStickySecret,
  type StickyCookieOptions,
} from '../../../src/proxy/sticky-cookie.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const SECRET = 'a-test-secret-of-sufficient-length'

function setup(overrides: Partial<StickyCookieOptions> = {}) {
  const clock = createManualClock()
  const cookie = createStickyCookie(
    { name: 'aya_sticky', ttlMs: 60_000, secret: SECRET, ...overrides },
    { clock },
  )
  return { clock, cookie }
}

/** Flips one character of the part of a value at `index` (0 id, 1 expiry, 2 mac). */
function tamper(value: string, index: number): string {
  const parts = value.split('.')
  const part = parts[index]!
  const last = part.at(-1)
  parts[index] = part.slice(0, -1) + (last === '0' ? '1' : '0')
  return parts.join('.')
}

describe('createStickyCookie', () => {
  it('round-trips an endpoint id through encode and decode', () => {
    const { cookie } = setup()
    assert.equal(cookie.decode(cookie.encode('10.0.0.5:8080')), '10.0.0.5:8080')
    assert.equal(
      cookie.decode(cookie.encode('ünïcode id; with=odd "chars"')),
      'ünïcode id; with=odd "chars"',
    )
  })

  it('does not reveal the endpoint id: the value names no backend address', () => {
    const { cookie } = setup()
    const value = cookie.encode('10.0.3.17:8000')
    const [id] = value.split('.')
    assert.doesNotMatch(Buffer.from(id!, 'base64url').toString('latin1'), /10\.0\.3\.17/)
    assert.doesNotMatch(value, /10\.0\.3\.17/)
    // One endpoint, one id part: the same backend always reads the same.
    assert.equal(cookie.encode('10.0.3.17:8000').split('.')[0], id)
    assert.notEqual(cookie.encode('10.0.3.18:8000').split('.')[0], id)
  })

  it('reads a value’s signed expiry with its endpoint id', () => {
    const { clock, cookie } = setup({ ttlMs: 10_000 })
    const value = cookie.encode('ep-1')
    assert.deepEqual(cookie.decodeBinding(value), {
      endpointId: 'ep-1',
      expiresAtMs: clock.wallNow() + 10_000,
    })
    assert.equal(cookie.decodeBinding(tamper(value, 1)), undefined)
  })

  it('produces values made only of cookie-safe characters', () => {
    const { cookie } = setup()
    assert.match(cookie.encode('a b;c,d"e\\f'), /^[A-Za-z0-9_\-.]+$/)
  })

  it('stops accepting a value exactly when its TTL runs out', () => {
    const { clock, cookie } = setup({ ttlMs: 10_000 })
    const value = cookie.encode('ep-1')
    clock.advance(9_999)
    assert.equal(cookie.decode(value), 'ep-1')
    clock.advance(1)
    assert.equal(cookie.decode(value), undefined)
  })

  it('rejects a value whose id, expiry or MAC was changed', () => {
    const { cookie } = setup()
    const value = cookie.encode('ep-1')
    for (const index of [0, 1, 2]) assert.equal(cookie.decode(tamper(value, index)), undefined)
  })

  it('rejects an expiry pushed into the future without re-signing', () => {
    const { cookie } = setup()
    const [id, , mac] = cookie.encode('ep-1').split('.')
    assert.equal(cookie.decode(`${id}.99999999999999.${mac}`), undefined)
  })

  it('rejects values signed with another secret or for another cookie name', () => {
    const { clock, cookie } = setup()
    const other = createStickyCookie(
      { name: 'aya_sticky', ttlMs: 60_000, secret: 'a-different-secret-entirely' },
      { clock },
    )
    const renamed = createStickyCookie(
      { name: 'other_sticky', ttlMs: 60_000, secret: SECRET },
      { clock },
    )
    assert.equal(cookie.decode(other.encode('ep-1')), undefined)
    assert.equal(renamed.decode(cookie.encode('ep-1')), undefined)
  })

  it('returns undefined for malformed values and never throws', () => {
    const { cookie } = setup()
    const mac = 'A'.repeat(43)
    for (const value of [
      '',
      '.',
      '..',
      'abc',
      'a.b',
      `.1.${mac}`,
      `ZXA.12x.${mac}`,
      `ZXA..${mac}`,
      `ZXA.1.${mac}A`,
      `ZXA.1.${'é'.repeat(43)}`,
      `ZXA.${'9'.repeat(20)}.${mac}`,
    ]) {
      assert.equal(cookie.decode(value), undefined, JSON.stringify(value))
    }
  })

  it('decodes nothing but what it encoded (property)', () => {
    const { cookie } = setup()
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (value) => {
        assert.equal(cookie.decode(value), undefined)
      }),
    )
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), (id) => {
        assert.equal(cookie.decode(cookie.encode(id)), id)
      }),
    )
  })

  it('writes a Set-Cookie header with safe defaults', () => {
    const { cookie } = setup({ ttlMs: 90_500 })
    const header = cookie.setCookieHeader('ep-1')
    const [pair, ...attributes] = header.split('; ')
    assert.ok(pair?.startsWith('aya_sticky='))
    assert.equal(cookie.decode(pair!.slice('aya_sticky='.length)), 'ep-1')
    assert.deepEqual(attributes, ['Path=/', 'Max-Age=91', 'HttpOnly', 'SameSite=Lax'])
  })

  it('adds Secure, a custom path and SameSite when asked', () => {
    const { cookie } = setup({ path: '/api', secure: true, sameSite: 'None' })
    const attributes = cookie.setCookieHeader('ep-1').split('; ').slice(1)
    assert.deepEqual(attributes, ['Path=/api', 'Max-Age=60', 'HttpOnly', 'SameSite=None', 'Secure'])
  })

  it('exposes its name', () => {
    assert.equal(setup().cookie.name, 'aya_sticky')
  })

  it('refuses unsafe or useless options when created', () => {
    assert.throws(() => setup({ name: 'bad name' }), /not a token/)
    assert.throws(() => setup({ name: '' }), /not a token/)
    assert.throws(() => setup({ ttlMs: 0 }), /ttlMs/)
    assert.throws(() => setup({ ttlMs: Number.POSITIVE_INFINITY }), /ttlMs/)
    assert.throws(() => setup({ secret: 'short' }), /at least 16/)
    assert.throws(() => setup({ path: 'api' }), /path/)
    assert.throws(() => setup({ path: '/a; Domain=evil.example' }), /path/)
    assert.throws(() => setup({ path: '/a\r\nX: y' }), /path/)
    assert.throws(() => setup({ sameSite: 'None' }), /secure/)
  })
})

describe('generateStickySecret', () => {
  it('makes 32 random bytes as base64url, different every time', () => {
    const secret = generateStickySecret()
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(Buffer.from(secret, 'base64url').length, 32)
    assert.notEqual(generateStickySecret(), secret)
  })

  it('is accepted as a sticky cookie secret', () => {
    assert.doesNotThrow(() => setup({ secret: generateStickySecret() }))
  })
})

describe('defaultStickyCookieName', () => {
  it('names the group after aya_sticky_, as is when the group name is a token', () => {
    assert.equal(defaultStickyCookieName('canary-v2.1'), 'aya_sticky_canary-v2.1')
  })

  it('gives any two group names two distinct names a cookie can carry', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const [nameA, nameB] = [defaultStickyCookieName(a), defaultStickyCookieName(b)]
        assert.doesNotThrow(() => setup({ name: nameA }))
        assert.equal(nameA === nameB, a === b)
      }),
    )
  })
})
