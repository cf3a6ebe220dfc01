import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { z } from 'zod'
import {
  createKeyExtractor,
  digestApiKey,
  findCookie,
  findQueryParam,
  type KeySource,
  keySelectorSchema,
} from '../../../src/proxy/key-selector.ts'

function source(overrides: Partial<KeySource> & { headers?: IncomingHttpHeaders } = {}): KeySource {
  return { headers: {}, path: '/', clientIp: '203.0.113.9', routeName: 'chat', ...overrides }
}

const sha256Prefix = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16)

describe('createKeyExtractor', () => {
  describe('header', () => {
    it('reads a header whatever the case of the configured name', () => {
      const extract = createKeyExtractor({ header: 'X-User-ID' })
      assert.equal(extract(source({ headers: { 'x-user-id': 'u1' } })), 'u1')
    })

    it('takes the first value of a header Node kept as an array', () => {
      const extract = createKeyExtractor({ header: 'x-tenant' })
      assert.equal(extract(source({ headers: { 'x-tenant': ['a', 'b'] } })), 'a')
    })

    it('uses a joined value whole, since one value may contain commas', () => {
      const extract = createKeyExtractor({ header: 'x-tenant' })
      assert.equal(extract(source({ headers: { 'x-tenant': 'a, b' } })), 'a, b')
    })

    it('treats a missing or empty header as no key', () => {
      const extract = createKeyExtractor({ header: 'x-user' })
      assert.equal(extract(source()), undefined)
      assert.equal(extract(source({ headers: { 'x-user': '' } })), undefined)
    })
  })

  describe('cookie', () => {
    const extract = createKeyExtractor({ cookie: 'session' })
    const withCookie = (cookie: string | string[]) =>
      extract(source({ headers: { cookie } as IncomingHttpHeaders }))

    it('finds a cookie among others, tolerating spaces', () => {
      assert.equal(withCookie('a=1; session=abc; b=2'), 'abc')
      assert.equal(withCookie('a=1;session=abc'), 'abc')
      assert.equal(withCookie('  session =  abc  ; b=2'), 'abc')
    })

    it('unquotes a quoted value', () => {
      assert.equal(withCookie('session="abc def"; b=2'), 'abc def')
    })

    it('keeps = signs inside the value', () => {
      assert.equal(withCookie('session=a=b=c'), 'a=b=c')
    })

    it('matches names exactly: not by prefix, suffix or case', () => {
      assert.equal(withCookie('sessionid=x; xsession=y; Session=z'), undefined)
      assert.equal(withCookie('sessionid=x; session=right'), 'right')
    })

    it('returns the first of repeated cookies', () => {
      assert.equal(withCookie('session=first; session=second'), 'first')
    })

    it('searches every cookie header in order', () => {
      assert.equal(withCookie(['a=1', 'session=from-second']), 'from-second')
      assert.equal(withCookie(['session=one', 'session=two']), 'one')
    })

    it('skips crumbs without = and treats empty values as no key', () => {
      assert.equal(withCookie('flag; session=v'), 'v')
      assert.equal(withCookie('session='), undefined)
      assert.equal(withCookie('session=""'), undefined)
      assert.equal(withCookie(''), undefined)
      assert.equal(extract(source()), undefined)
    })

    // Its scaling (no quadratic rescans) is measured by `npm run bench:hot-paths`.
    it('finds the key after a long run of crumbs without =', () => {
      const header = `${'x;'.repeat(50_000)}session=v`
      assert.equal(findCookie(header, 'session'), 'v')
    })
  })

  describe('query', () => {
    const extract = createKeyExtractor({ query: 'user' })
    const withPath = (path: string) => extract(source({ path }))

    it('reads the first value of a query parameter', () => {
      assert.equal(withPath('/v1/chat?user=alice&user=bob'), 'alice')
      assert.equal(withPath('/v1/chat?a=1&user=bob'), 'bob')
    })

    it('decodes percent escapes and + as in forms', () => {
      assert.equal(withPath('/?user=J%C3%BCrgen+M'), 'Jürgen M')
      assert.equal(withPath('/?us%65r=encoded-name'), 'encoded-name')
    })

    it('keeps malformed escapes instead of throwing', () => {
      assert.equal(withPath('/?user=%E0%A4%A'), new URLSearchParams('user=%E0%A4%A').get('user'))
      assert.equal(withPath('/?user=100%'), '100%')
    })

    it('treats no query, a missing parameter or an empty value as no key', () => {
      assert.equal(withPath('/v1/chat'), undefined)
      assert.equal(withPath('/v1/chat?'), undefined)
      assert.equal(withPath('/?other=1'), undefined)
      assert.equal(withPath('/?user='), undefined)
      assert.equal(withPath('/?user'), undefined)
      assert.equal(withPath('/?users=x&xuser=y'), undefined)
    })

    it('agrees with URLSearchParams on encoded names and values (property)', () => {
      const part = fc.string({ unit: 'grapheme', maxLength: 8 })
      fc.assert(
        fc.property(
          fc.array(fc.tuple(part, part), { maxLength: 6 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
          (pairs, name) => {
            const query = pairs
              .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
              .join('&')
            const expected = new URLSearchParams(query).get(name) ?? undefined
            assert.equal(findQueryParam(`/p?${query}`, name), expected)
          },
        ),
      )
    })
  })

  describe('ip and route', () => {
    it('returns the resolved client address', () => {
      assert.equal(createKeyExtractor({ ip: true })(source()), '203.0.113.9')
      assert.equal(createKeyExtractor({ ip: true })(source({ clientIp: '' })), undefined)
    })

    it('returns the route name', () => {
      assert.equal(createKeyExtractor({ route: true })(source()), 'chat')
    })
  })

  describe('apiKey', () => {
    const extract = createKeyExtractor({ apiKey: true })

    it('digests a Bearer token, never returning the secret', () => {
      const key = extract(source({ headers: { authorization: 'Bearer sk-secret-1' } }))
      assert.equal(key, sha256Prefix('sk-secret-1'))
      assert.equal(key, digestApiKey('sk-secret-1'))
      assert.match(key ?? '', /^[0-9a-f]{16}$/)
      assert.ok(!key?.includes('secret'))
    })

    it('accepts the Bearer scheme in any case and trims the token', () => {
      const key = extract(source({ headers: { authorization: 'bearer   sk-1  ' } }))
      assert.equal(key, digestApiKey('sk-1'))
    })

    it('falls back to x-api-key, then api-key', () => {
      assert.equal(extract(source({ headers: { 'x-api-key': 'k2' } })), digestApiKey('k2'))
      assert.equal(extract(source({ headers: { 'api-key': 'k3' } })), digestApiKey('k3'))
      assert.equal(
        extract(source({ headers: { 'x-api-key': 'k2', 'api-key': 'k3' } })),
        digestApiKey('k2'),
      )
    })

    it('prefers Bearer over the api-key headers', () => {
      const headers = { authorization: 'Bearer k1', 'x-api-key': 'k2' }
      assert.equal(extract(source({ headers })), digestApiKey('k1'))
    })

    it('ignores other schemes and empty tokens', () => {
      assert.equal(extract(source({ headers: { authorization: 'Basic dXNlcjpwYXNz' } })), undefined)
      assert.equal(extract(source({ headers: { authorization: 'Bearer ' } })), undefined)
      assert.equal(extract(source({ headers: { authorization: 'Bearer    ' } })), undefined)
      assert.equal(
        extract(source({ headers: { authorization: 'Basic x', 'x-api-key': 'k2' } })),
        digestApiKey('k2'),
      )
      assert.equal(extract(source()), undefined)
    })

    it('gives different keys different digests', () => {
      assert.notEqual(digestApiKey('sk-a'), digestApiKey('sk-b'))
    })
  })
})

describe('keySelectorSchema', () => {
  const messageFor = (input: unknown) => {
    const result = keySelectorSchema.safeParse(input)
    assert.equal(result.success, false, `expected ${JSON.stringify(input)} to be rejected`)
    return result.error?.issues[0]?.message ?? ''
  }

  it('accepts each selector shape', () => {
    for (const selector of [
      { header: 'x-user-id' },
      { cookie: 'session' },
      { query: 'user id' },
      { ip: true },
      { route: true },
      { apiKey: true },
    ]) {
      assert.deepEqual(keySelectorSchema.parse(selector), selector)
    }
  })

  it('rejects an empty object, asking for exactly one field', () => {
    assert.match(
      messageFor({}),
      /exactly one of 'header', 'cookie', 'query', 'ip', 'route', 'apiKey'/,
    )
  })

  it('rejects two fields at once, naming both', () => {
    assert.match(messageFor({ header: 'x', ip: true }), /exactly one field, got 'header' and 'ip'/)
  })

  it('rejects unknown fields by name', () => {
    assert.match(messageFor({ heder: 'x' }), /unknown key selector field 'heder'/)
  })

  it('rejects non-objects', () => {
    assert.match(messageFor('ip'), /must be an object/)
    assert.match(messageFor(null), /must be an object/)
    assert.match(messageFor([]), /must be an object/)
  })

  it('rejects empty names and names that are not HTTP tokens', () => {
    assert.match(messageFor({ header: '' }), /header name must not be empty/)
    assert.match(messageFor({ header: 'x user' }), /header name must be a valid HTTP token/)
    assert.match(messageFor({ cookie: 'a;b' }), /cookie name must be a valid HTTP token/)
    assert.match(messageFor({ query: '' }), /query parameter name must not be empty/)
  })

  it('rejects flags that are not exactly true', () => {
    assert.match(messageFor({ ip: false }), /'ip' must be true/)
    assert.match(messageFor({ apiKey: 'yes' }), /'apiKey' must be true/)
  })

  it('reports the path when nested in a config object', () => {
    const result = z.object({ hashKey: keySelectorSchema }).safeParse({ hashKey: {} })
    assert.equal(result.success, false)
    assert.deepEqual(result.error?.issues[0]?.path, ['hashKey'])
  })
})
