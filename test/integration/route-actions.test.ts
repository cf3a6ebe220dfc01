import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { parseConfigObject } from '../../src/config/load.ts'
import { adminMetrics, metricSample, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startNamedUpstream, startUpstream } from '../helpers/upstreams.ts'

interface Echo {
  name: string
  url: string
  bytes: number
  headers: Record<string, string>
}

/** Aya mirroring every request of `primary` to `shadow`; all closed after the test. */
async function startMirrored(t: { after(fn: () => Promise<unknown>): void }) {
  const [primary, shadow] = await Promise.all([
    startNamedUpstream('primary'),
    startNamedUpstream('shadow'),
  ])
  t.after(() => Promise.all([primary.close(), shadow.close()]))
  const aya = await startAya({
    routes: [{ match: { pathPrefix: '/' }, upstream: 'primary', mirror: { upstream: 'shadow' } }],
    upstreams: {
      primary: { endpoints: [{ url: primary.url }] },
      shadow: { endpoints: [{ url: shadow.url }] },
    },
  })
  t.after(() => aya.close())
  return { aya, shadow }
}

describe('route actions', () => {
  test('matches on host, method, path prefix and headers, first match wins', async (t) => {
    const [blue, other] = await Promise.all([
      startNamedUpstream('blue'),
      startNamedUpstream('other'),
    ])
    t.after(() => Promise.all([blue.close(), other.close()]))
    const aya = await startAya({
      routes: [
        {
          match: {
            pathPrefix: '/api',
            host: 'api.example.com',
            method: 'GET',
            headers: { 'x-tenant': 'blue' },
          },
          upstream: 'blue',
        },
        { match: { pathPrefix: '/' }, upstream: 'other' },
      ],
      upstreams: {
        blue: { endpoints: [{ url: blue.url }] },
        other: { endpoints: [{ url: other.url }] },
      },
    })
    t.after(() => aya.close())
    const hit = async (path: string, headers: Record<string, string>, method = 'GET') => {
      const res = await request(`${aya.url}${path}`, { method: method as 'GET', headers })
      return ((await res.body.json()) as Echo).name
    }
    const blueHeaders = { host: 'api.example.com:8080', 'x-tenant': 'blue' }
    assert.equal(await hit('/api/x', blueHeaders), 'blue')
    assert.equal(await hit('/api/x', { ...blueHeaders, 'x-tenant': 'red' }), 'other')
    assert.equal(await hit('/api/x', { ...blueHeaders, host: 'www.example.com' }), 'other')
    assert.equal(await hit('/api/x', blueHeaders, 'POST'), 'other')
    assert.equal(await hit('/web', blueHeaders), 'other')
  })

  test('matches a Host written with the root’s trailing dot as the same host, so it cannot pass a host route', async (t) => {
    const [admin, other] = await Promise.all([
      startNamedUpstream('admin'),
      startNamedUpstream('other'),
    ])
    t.after(() => Promise.all([admin.close(), other.close()]))
    const aya = await startAya({
      routes: [
        { match: { host: 'admin.example.com' }, upstream: 'admin' },
        { match: { host: '*.corp.example.' }, upstream: 'admin' },
        { match: { pathPrefix: '/' }, upstream: 'other' },
      ],
      upstreams: {
        admin: { endpoints: [{ url: admin.url }] },
        other: { endpoints: [{ url: other.url }] },
      },
    })
    t.after(() => aya.close())
    const routedTo = async (host: string) => {
      const res = await request(`${aya.url}/x`, { headers: { host } })
      return ((await res.body.json()) as Echo).name
    }
    // `admin.example.com.` is the same name, fully qualified (RFC 1034 §3.1); nginx strips the dot.
    for (const host of [
      'admin.example.com.',
      'ADMIN.example.com.:8080',
      'a.corp.example',
      'a.corp.example.',
    ])
      assert.equal(await routedTo(host), 'admin', host)
    for (const host of ['example.com.', 'corp.example.', 'admin.example.com..'])
      assert.equal(await routedTo(host), 'other', host)
  })

  test('rewrites the path prefix and edits request and response headers', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [
        {
          match: { pathPrefix: '/api' },
          upstream: 'u',
          rewrite: { pathPrefix: '/v2' },
          requestHeaders: { set: { 'x-added': 'yes' }, remove: ['x-secret'] },
          responseHeaders: { add: { 'x-served-by': 'aya' }, remove: ['content-type'] },
        },
      ],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/api/users?id=7`, { headers: { 'x-secret': 'hunter2' } })
    const echo = (await res.body.json()) as Echo
    assert.equal(echo.url, '/v2/users?id=7')
    assert.equal(echo.headers['x-added'], 'yes')
    assert.equal(echo.headers['x-secret'], undefined)
    assert.equal(res.headers['x-served-by'], 'aya')
    assert.equal(res.headers['content-type'], undefined)
  })

  test('routes and rewrites the normalized path, so dot segments and escapes cannot pass a deny route or leave a rewrite', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [
        { match: { pathPrefix: '/admin' }, redirect: { path: '/denied' } },
        { match: { pathPrefix: '/api' }, upstream: 'u', rewrite: { pathPrefix: '/internal/v2/' } },
        { match: { pathPrefix: '/svc' }, upstream: 'u', rewrite: { pathPrefix: '/' } },
        { match: { pathPrefix: '/' }, upstream: 'u' },
      ],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    // Raw targets, as a client may send them: fetch-style clients would normalize them first.
    const send = async (target: string) => {
      const client = await openRawClient(aya.url)
      client.socket.write(`GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
      await once(client.socket, 'end')
      const text = client.received()
      const location = /location: (\S+)/i.exec(text)?.[1]
      const body = text.slice(text.indexOf('\r\n\r\n') + 4)
      // The echo may come chunked: its JSON is from the first { to the last }.
      return (
        location ??
        (JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1)) as Echo).url
      )
    }
    for (const target of ['/%61dmin', '/x/../admin', '/admin/./x']) {
      assert.match(await send(target), /\/denied$/, target)
    }
    assert.equal(await send('/api/../secret?q=1'), '/secret?q=1')
    assert.equal(await send('/api/a/%2e%2e/b'), '/internal/v2/b')
    assert.equal(await send('/svc//evil.com/x'), '/evil.com/x')
  })

  test('redirects with the configured status, keeping the query', async (t) => {
    const aya = await startAya({
      routes: [
        {
          match: { pathPrefix: '/old' },
          redirect: { scheme: 'https', pathPrefix: '/new', status: 308 },
        },
      ],
      upstreams: {},
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/old/page?q=1`, { headers: { host: 'shop.example.com' } })
    assert.equal(res.statusCode, 308)
    assert.equal(res.headers.location, 'https://shop.example.com/new/page?q=1')
    await res.body.dump()
  })

  test('redirects on the scheme a trusted proxy says the client used, and never on an untrusted one’s word', async (t) => {
    const routes = [{ match: { pathPrefix: '/old' }, redirect: { pathPrefix: '/new' } }]
    const behindTls = await startAya({ trustedProxies: ['127.0.0.1/32'], routes, upstreams: {} })
    const direct = await startAya({ routes, upstreams: {} })
    t.after(() => Promise.all([behindTls.close(), direct.close()]))
    const locationOf = async (aya: { url: string }, proto: string) => {
      const res = await request(`${aya.url}/old/page?q=1`, {
        headers: { host: 'shop.example.com', 'x-forwarded-proto': proto },
      })
      await res.body.dump()
      return res.headers.location
    }
    // A TLS-terminating proxy in front: a redirect to http:// would leave TLS (or loop on a
    // proxy that redirects http to https).
    assert.equal(await locationOf(behindTls, 'https'), 'https://shop.example.com/new/page?q=1')
    assert.equal(await locationOf(behindTls, 'HTTPS'), 'https://shop.example.com/new/page?q=1')
    assert.equal(await locationOf(behindTls, 'http'), 'http://shop.example.com/new/page?q=1')
    assert.equal(await locationOf(behindTls, 'gopher'), 'http://shop.example.com/new/page?q=1')
    assert.equal(await locationOf(direct, 'https'), 'http://shop.example.com/new/page?q=1')
  })

  test('refuses a Host that is not a host, so it never reaches a redirect’s Location', async (t) => {
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/old' }, redirect: { pathPrefix: '/new' } }],
      upstreams: {},
    })
    t.after(() => aya.close())
    for (const host of ['evil.com/phish?', 'good.com@evil.com', 'a b']) {
      const client = await openRawClient(aya.url)
      client.socket.write(`GET /old/x HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)
      await once(client.socket, 'end')
      assert.match(client.received(), /^HTTP\/1\.1 400 /, host)
      assert.doesNotMatch(client.received(), /location:/i, host)
    }
    // HTTP/1.0 may send none: a redirect to the same host has no host to name.
    const client = await openRawClient(aya.url)
    client.socket.write('GET /old/x HTTP/1.0\r\n\r\n')
    await once(client.socket, 'end')
    assert.match(client.received(), /^HTTP\/1\.1 400 /)
  })

  test('splits traffic between upstream groups by weight', async (t) => {
    const [stable, canary] = await Promise.all([
      startNamedUpstream('stable'),
      startNamedUpstream('canary'),
    ])
    t.after(() => Promise.all([stable.close(), canary.close()]))
    const aya = await startAya({
      routes: [
        {
          match: { pathPrefix: '/' },
          split: [
            { upstream: 'stable', weight: 80 },
            { upstream: 'canary', weight: 20 },
          ],
        },
      ],
      upstreams: {
        stable: { endpoints: [{ url: stable.url }] },
        canary: { endpoints: [{ url: canary.url }] },
      },
    })
    t.after(() => aya.close())
    let canaryCount = 0
    for (let i = 0; i < 400; i++) {
      const res = await request(`${aya.url}/`)
      if (((await res.body.json()) as Echo).name === 'canary') canaryCount++
    }
    assert.ok(canaryCount > 50 && canaryCount < 110, `canary got ${canaryCount} of 400`)
  })

  test('mirrors requests with their body to a shadow group without waiting for it', async (t) => {
    const { aya, shadow } = await startMirrored(t)
    const res = await request(`${aya.url}/m`, { method: 'POST', body: 'x'.repeat(5000) })
    const echo = (await res.body.json()) as Echo
    assert.equal(echo.name, 'primary')
    assert.equal(echo.bytes, 5000)
    for (let i = 0; i < 100 && shadow.requests.length === 0; i++) await sleep(10)
    assert.equal(shadow.requests.length, 1)
    assert.match(String(shadow.requests[0]!.headers.host), /^127\.0\.0\.1-shadow:\d+$/)
  })

  test('puts -shadow on the mirrored Host’s name, before its port, so a server that parses the port takes the copy', async (t) => {
    const { aya, shadow } = await startMirrored(t)
    const hosts = ['shop.example.com:8080', '[::1]:8443', 'shop.example.com']
    for (const host of hosts) {
      const res = await request(`${aya.url}/m`, { headers: { host } })
      assert.equal(((await res.body.json()) as Echo).headers.host, host)
    }
    for (let i = 0; i < 100 && shadow.requests.length < hosts.length; i++) await sleep(10)
    // Envoy did the same until it was fixed (envoyproxy/envoy#2595): Tomcat refused `:8080-shadow`.
    assert.deepEqual(shadow.requests.map((req) => req.headers.host).sort(), [
      '[::1]-shadow:8443',
      'shop.example.com-shadow',
      'shop.example.com-shadow:8080',
    ])
  })

  test('never lets a shadow that hangs slow the primary on the same server, nor pile up copies', {
    timeout: 30_000,
  }, async (t) => {
    // One server for both, as a mirror to another Host of the same service is: the shadow copy
    // (its Host's name ends in -shadow) never gets an answer.
    const server = await startUpstream((req, res) => {
      if (String(req.headers.host).includes('-shadow')) return
      req.resume()
      res.end('primary')
    })
    t.after(() => server.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'primary', mirror: { upstream: 'shadow' } }],
      upstreams: {
        primary: { maxConnectionsPerEndpoint: 2, endpoints: [{ url: server.url }] },
        shadow: {
          maxConnectionsPerEndpoint: 2,
          timeouts: { firstByteMs: 60_000 },
          endpoints: [{ url: server.url }],
        },
      },
    })
    t.after(() => aya.close())
    const startedMs = performance.now()
    for (let i = 0; i < 20; i++) {
      const res = await request(`${aya.url}/m`, { method: 'POST', body: 'x'.repeat(1000) })
      assert.equal(await res.body.text(), 'primary')
    }
    const tookMs = performance.now() - startedMs
    assert.ok(tookMs < 5000, `20 primary requests took ${Math.round(tookMs)} ms`)
    const inflight = metricSample(
      await adminMetrics(aya),
      'aya_endpoint_inflight_requests',
      `upstream="shadow",endpoint="${new URL(server.url).host}"`,
    )
    assert.ok(inflight !== undefined && inflight <= 2, `shadow copies waiting: ${inflight}`)
  })

  test('believes X-Forwarded-For only from trusted proxies', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const config = (trustedProxies: string[]) => ({
      trustedProxies,
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { policy: 'ip-hash', endpoints: [{ url: upstream.url }] } },
    })
    const trusting = await startAya(config(['127.0.0.0/8']))
    t.after(() => trusting.close())
    const sceptical = await startAya(config([]))
    t.after(() => sceptical.close())
    const headers = { 'x-forwarded-for': '203.0.113.9' }
    await (await request(`${trusting.url}/`, { headers })).body.dump()
    await (await request(`${sceptical.url}/`, { headers })).body.dump()
    const clients = [trusting, sceptical].map((a) => a.logs.find((l) => l.msg === 'access')?.client)
    assert.deepEqual(clients, ['203.0.113.9', '127.0.0.1'])
  })

  test('stops believing a proxy, and applies a lower body limit, from the reload that says so', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const config = (trustedProxies: string[], maxBodyBytes: number) => ({
      trustedProxies,
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxBodyBytes }],
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    const aya = await startAya(config(['127.0.0.0/8'], 1000))
    t.after(() => aya.close())
    const send = async () => {
      const res = await request(`${aya.url}/`, {
        method: 'POST',
        headers: { 'x-forwarded-for': '203.0.113.9' },
        body: 'x'.repeat(100),
      })
      await res.body.dump()
      return [res.statusCode, aya.logs.filter((l) => l.msg === 'access').at(-1)?.client]
    }
    assert.deepEqual(await send(), [200, '203.0.113.9'])
    aya.aya.reload(
      parseConfigObject({ ...config([], 10), admin: { address: '127.0.0.1', port: 0 } }, {}),
    )
    assert.deepEqual(await send(), [413, '127.0.0.1'])
  })

  test('a reload that changes an upstream’s connect timeout closes the old pool’s idle connections at once', async (t) => {
    let open = 0
    const upstream = await startUpstream((_req, res) => res.end('ok'))
    upstream.server.on('connection', (socket) => {
      open += 1
      socket.on('close', () => {
        open -= 1
      })
    })
    t.after(() => upstream.close())
    const config = (connectMs: number) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }], timeouts: { connectMs } } },
    })
    const aya = await startAya(config(2000))
    t.after(() => aya.close())
    await (await request(`${aya.url}/`)).body.dump()
    assert.equal(open, 1, 'the pool keeps its connection alive')
    aya.aya.reload(
      parseConfigObject({ ...config(1500), admin: { address: '127.0.0.1', port: 0 } }, {}),
    )
    // Well inside the pool's 4-s keep-alive: only closing the pool frees the connection so soon.
    await eventually(() => open === 0, 'the old pool closes its idle connection', 1000)
    await (await request(`${aya.url}/`)).body.dump()
    assert.equal(open, 1, 'the new pool connects')
  })
})
