import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { createStickyCookie } from '../../../src/proxy/sticky-cookie.ts'
import { createSystemClock } from '../../../src/util/clock.ts'
import { configIssuesOf } from '../../helpers/config-issues.ts'

const withEndpoint = (url: string) => ({
  listeners: [{ name: 'public', port: 8080 }],
  routes: [{ match: { pathPrefix: '/' }, upstream: 'api' }],
  upstreams: { api: { endpoints: [{ url }] } },
})

describe('config values that would be silently ignored are refused', () => {
  test('an endpoint URL with a path, query, fragment or credentials, which requests would never see', () => {
    for (const url of [
      'http://10.0.0.1:8080/api',
      'http://10.0.0.1:8080/?tenant=a',
      'http://10.0.0.1:8080#x',
      'http://user:secret@10.0.0.1:8080',
    ]) {
      const issues = configIssuesOf(withEndpoint(url))
      assert.equal(issues.length, 1, url)
      assert.match(
        issues[0]!,
        /^upstreams\.api\.endpoints\[0\]\.url: expected scheme:\/\/host:port alone/,
      )
      assert.ok(issues[0]!.endsWith(`got "${url.replace(':secret@', ':***@')}"`), issues[0])
    }
    for (const url of [
      'http://10.0.0.1:8080',
      'http://10.0.0.1:8080/',
      'https://api.example.com',
    ]) {
      assert.doesNotThrow(() => parseConfigObject(withEndpoint(url), {}), url)
    }
  })

  test('an endpoint URL at port 0, where nothing can be connected to', () => {
    for (const url of ['http://10.0.0.1:0', 'http://[::1]:0/', 'https://api.example.com:0']) {
      assert.deepEqual(configIssuesOf(withEndpoint(url)), [
        `upstreams.api.endpoints[0].url: expected a port from 1 to 65535: nothing can be connected to at port 0, got "${url}"`,
      ])
    }
  })

  test('a route host with a port, which never equals a Host’s name', () => {
    for (const host of ['api.example.com:8080', '*', 'a.com/x']) {
      const raw = {
        ...withEndpoint('http://10.0.0.1:8080'),
        routes: [{ match: { host }, upstream: 'api' }],
      }
      const issues = configIssuesOf(raw)
      assert.equal(issues.length, 1, host)
      assert.match(issues[0]!, /^routes\[0\]\.match\.host: expected a host name without a port/)
      assert.ok(issues[0]!.endsWith(`got "${host}"`), issues[0])
    }
    for (const host of [
      'api.example.com',
      'API.example.com',
      '*.example.com',
      '10.0.0.1',
      '[::1]',
    ]) {
      const raw = {
        ...withEndpoint('http://10.0.0.1:8080'),
        routes: [{ match: { host }, upstream: 'api' }],
      }
      assert.doesNotThrow(() => parseConfigObject(raw, {}), host)
    }
  })

  test('a sticky cookie ttlMs past 400 days, whose expiry would not read back, so every request rebinds', () => {
    const withTtl = (ttlMs: number) => {
      const raw = withEndpoint('http://10.0.0.1:8080')
      return { ...raw, upstreams: { api: { ...raw.upstreams.api, sticky: { cookie: { ttlMs } } } } }
    }
    const issues = configIssuesOf(withTtl(1e15))
    assert.deepEqual(issues, [
      'upstreams.api.sticky.cookie.ttlMs: expected at most 34560000000 milliseconds (400 days, the longest a browser keeps a cookie), got 1000000000000000',
    ])
    const longest = parseConfigObject(withTtl(34_560_000_000), {}).upstreams.api!.sticky
    const ttlMs = longest && 'cookie' in longest ? longest.cookie.ttlMs : 0
    const cookie = createStickyCookie(
      { name: 'aya_sticky', ttlMs, secret: 'a-secret-of-enough-characters' },
      { clock: createSystemClock() },
    )
    assert.equal(cookie.decode(cookie.encode('10.0.0.1:8080')), '10.0.0.1:8080')
  })
})

describe('timeouts past what a timer can wait are refused, not fired at once', () => {
  const tooLong = 2 ** 31
  test('upstream and route timeouts, engine metrics intervals, the state command timeout and a sim fleet’s startupMs', () => {
    const base = withEndpoint('http://10.0.0.1:8080')
    const cases: [string, unknown][] = [
      [
        'upstreams.api.timeouts.connectMs',
        {
          ...base,
          upstreams: { api: { ...base.upstreams.api, timeouts: { connectMs: tooLong } } },
        },
      ],
      [
        'routes[0].timeouts.firstByteMs',
        {
          ...base,
          routes: [{ ...base.routes[0], timeouts: { firstByteMs: tooLong } }],
        },
      ],
      [
        'state.commandTimeoutMs',
        { ...base, state: { store: 'memory', commandTimeoutMs: tooLong } },
      ],
      [
        'upstreams.api.sim.startupMs',
        {
          ...base,
          upstreams: {
            api: { sim: { replicas: 1, profile: 'h100-llama3-8b', startupMs: tooLong } },
          },
        },
      ],
    ]
    for (const [path, raw] of cases) {
      const issues = configIssuesOf(raw)
      assert.equal(issues.length, 1, path)
      assert.ok(
        issues[0]!.startsWith(`${path}: expected at most 2147483647 milliseconds`),
        issues[0],
      )
    }
    const atCap = {
      ...base,
      upstreams: { api: { ...base.upstreams.api, timeouts: { idleMs: 2 ** 31 - 1 } } },
    }
    assert.doesNotThrow(() => parseConfigObject(atCap, {}))
  })
})

describe('a refused credential is never printed', () => {
  test('a secret is named by its length, and a URL’s password is masked', () => {
    const base = withEndpoint('http://10.0.0.1:8080')
    const secretIssues = configIssuesOf({
      ...base,
      upstreams: { api: { ...base.upstreams.api, sticky: { cookie: { secret: 'hunter2' } } } },
    })
    assert.deepEqual(secretIssues, [
      'upstreams.api.sticky.cookie.secret: expected a secret of at least 16 characters (or empty to generate one), got a value of 7 characters (not shown)',
    ])
    const urlIssues = configIssuesOf({
      ...base,
      state: { store: 'redis', url: 'redis://:hunter2@cache:notaport' },
    })
    assert.equal(urlIssues.length, 1)
    assert.ok(urlIssues[0]!.startsWith('state.url: '), urlIssues[0])
    assert.ok(urlIssues[0]!.endsWith('got "redis://:***@cache:notaport"'), urlIssues[0])
    const queryIssues = configIssuesOf({
      ...base,
      state: { store: 'redis', url: 'redis://cache?password=hunter2' },
    })
    assert.equal(queryIssues.length, 1)
    assert.ok(queryIssues[0]!.endsWith('got "redis://cache?password=***"'), queryIssues[0])
    for (const issue of [...secretIssues, ...urlIssues, ...queryIssues]) {
      assert.ok(!issue.includes('hunter2'))
    }
  })
})

describe('header edits that would break a message’s framing are refused', () => {
  const withEdits = (edits: Record<string, unknown>) => ({
    ...withEndpoint('http://10.0.0.1:8080'),
    routes: [{ match: { pathPrefix: '/' }, upstream: 'api', ...edits }],
  })

  test('setting or adding Content-Length, Transfer-Encoding or a connection header, either way', () => {
    // A response sent with a set Content-Length and the upstream's whole body desyncs the client's
    // connection (the rest reads as the next response); on the request, undici refuses them and
    // each request failed as a connect failure.
    for (const side of ['requestHeaders', 'responseHeaders']) {
      for (const op of ['set', 'add']) {
        for (const name of [
          'Content-Length',
          'transfer-encoding',
          'connection',
          'keep-alive',
          'upgrade',
          'te',
          'trailer',
          'expect',
        ]) {
          const issues = configIssuesOf(withEdits({ [side]: { [op]: { [name]: '3' } } }))
          assert.equal(issues.length, 1, `${side}.${op}.${name}`)
          assert.match(
            issues[0]!,
            new RegExp(`^routes\\[0\\]\\.${side}\\.${op}\\.${name}: `),
            issues[0],
          )
          assert.match(issues[0]!, /frames the message or belongs to one connection/)
        }
      }
    }
  })

  test('adding a second Host, while setting Host and removing framing headers stay allowed', () => {
    const issues = configIssuesOf(withEdits({ requestHeaders: { add: { host: 'b.internal' } } }))
    assert.equal(issues.length, 1)
    assert.match(issues[0]!, /^routes\[0\]\.requestHeaders\.add\.host: /)
    assert.doesNotThrow(() =>
      parseConfigObject(
        withEdits({
          requestHeaders: { set: { host: 'b.internal' }, remove: ['content-length'] },
          responseHeaders: { remove: ['content-length', 'transfer-encoding'] },
        }),
        {},
      ),
    )
  })
})

describe('a redirect whose path part would be ignored is refused', () => {
  const withRedirect = (match: Record<string, unknown>, redirect: Record<string, unknown>) => ({
    ...withEndpoint('http://10.0.0.1:8080'),
    routes: [{ match, redirect }],
  })

  test('a redirect pathPrefix with no match.pathPrefix to replace, which answered with its own URL', () => {
    // The Location was the request's own URL: a browser followed it round until it gave up.
    assert.deepEqual(configIssuesOf(withRedirect({ host: 'a.example' }, { pathPrefix: '/new' })), [
      'routes[0].redirect.pathPrefix: a prefix redirect needs match.pathPrefix to replace',
    ])
    assert.doesNotThrow(() =>
      parseConfigObject(withRedirect({ pathPrefix: '/old' }, { pathPrefix: '/new' }), {}),
    )
  })

  test('both path and pathPrefix, of which pathPrefix was dropped', () => {
    assert.deepEqual(
      configIssuesOf(withRedirect({ pathPrefix: '/old' }, { path: '/a', pathPrefix: '/new' })),
      [
        'routes[0].redirect.pathPrefix: a redirect sets path (the whole path) or pathPrefix (its prefix), not both',
      ],
    )
  })
})

describe('engine-metrics staleness that no scrape could meet is refused', () => {
  const withEngineMetrics = (engineMetrics: Record<string, unknown>) => {
    const config = withEndpoint('http://10.0.0.1:8080')
    return { ...config, upstreams: { api: { ...config.upstreams.api, engineMetrics } } }
  }

  test('a staleAfterMs no longer than scrapeIntervalMs, which made every reading unknown between scrapes', () => {
    for (const [scrapeIntervalMs, staleAfterMs] of [
      [1000, 500],
      [1000, 1000],
      [undefined, 800],
    ] as const) {
      const interval = scrapeIntervalMs ?? 1000
      assert.deepEqual(configIssuesOf(withEngineMetrics({ scrapeIntervalMs, staleAfterMs })), [
        `upstreams.api.engineMetrics.staleAfterMs: expected more than scrapeIntervalMs (${interval}): every reading would be stale before the next one arrives (leave room for the scrape itself: 2 to 3 intervals), got ${staleAfterMs}`,
      ])
    }
    for (const engineMetrics of [
      { scrapeIntervalMs: 1000, staleAfterMs: 1500 },
      { scrapeIntervalMs: 50 },
      { staleAfterMs: 1001 },
    ]) {
      assert.doesNotThrow(
        () => parseConfigObject(withEngineMetrics(engineMetrics), {}),
        JSON.stringify(engineMetrics),
      )
    }
  })
})
