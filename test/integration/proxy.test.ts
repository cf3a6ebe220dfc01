import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { closedPort, startNamedUpstream, startUpstream } from '../helpers/upstreams.ts'

describe('http proxy', () => {
  test('spreads requests across three backends', async (t) => {
    const upstreams = await Promise.all(['a', 'b', 'c'].map(startNamedUpstream))
    t.after(() => Promise.all(upstreams.map((u) => u.close())))
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: {
        web: { policy: 'round-robin', endpoints: upstreams.map((u) => ({ url: u.url })) },
      },
    })
    t.after(() => aya.close())
    const counts = new Map<string, number>()
    for (let i = 0; i < 30; i++) {
      const res = await request(`${aya.url}/x`)
      const body = (await res.body.json()) as { name: string }
      counts.set(body.name, (counts.get(body.name) ?? 0) + 1)
    }
    assert.deepEqual([...counts.entries()].sort(), [
      ['a', 10],
      ['b', 10],
      ['c', 10],
    ])
  })

  test('delivers each SSE event before the upstream finishes the stream', async (t) => {
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: first\n\n')
      void released.then(() => res.end('data: last\n\n'))
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'llm' }],
      upstreams: { llm: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/stream`)
    assert.equal(res.statusCode, 200)
    const iterator = res.body[Symbol.asyncIterator]()
    const first = await iterator.next()
    assert.equal(
      String(first.value),
      'data: first\n\n',
      'first event arrives while upstream is still open',
    )
    release()
    let rest = ''
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      rest += String(next.value)
    assert.equal(rest, 'data: last\n\n')
  })

  test('passes a streamed response’s head on at once, before its first event', {
    timeout: 10_000,
  }, async (t) => {
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.flushHeaders()
      void released.then(() => res.end('data: only\n\n'))
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'events' }],
      upstreams: { events: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    // The head arrives while the upstream has sent no byte of the body yet.
    const res = await request(`${aya.url}/events`)
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'text/event-stream')
    release()
    assert.equal(await res.body.text(), 'data: only\n\n')
  })

  test('answers 501 to a body in a transfer coding other than chunked, and 405 to CONNECT', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    const ask = async (head: string) => {
      const client = await openRawClient(aya.url)
      client.socket.write(head)
      await once(client.socket, 'end')
      return client.received()
    }
    const coded = await ask(
      'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n0\r\n\r\n',
    )
    assert.match(coded, /^HTTP\/1\.1 501 /)
    assert.match(coded, /LB_ERR_UNSUPPORTED/)
    assert.equal(upstream.requests.length, 0)
    assert.match(
      await ask('CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n'),
      /^HTTP\/1\.1 405 /,
    )
  })

  test('answers 405 to TRACE without forwarding it, so no upstream echoes the headers Aya adds', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAya({
      log: { access: false },
      routes: [
        {
          match: { pathPrefix: '/' },
          upstream: 'u',
          requestHeaders: { set: { authorization: 'Bearer upstream-secret' } },
        },
      ],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write('TRACE / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
    await once(client.socket, 'end')
    assert.match(client.received(), /^HTTP\/1\.1 405 /)
    assert.match(client.received(), /\r\nx-aya-error-code: LB_ERR_METHOD_NOT_ALLOWED\r\n/)
    assert.match(client.received(), /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/)
    assert.doesNotMatch(client.received(), /upstream-secret/)
    assert.equal(upstream.requests.length, 0)
  })

  test('passes a 304 that states a Content-Length, and a 204 that wrongly carries a body, as bodiless replies on a connection that stays open', async (t) => {
    // Raw, because no HTTP server library sends the second: a 204 with a stated body.
    const answers: Record<string, string> = {
      '/304': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\n',
      '/204': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
    }
    const upstream = createNetServer((socket) => {
      socket.on('data', (chunk) => {
        const path = /^GET (\S+)/.exec(String(chunk))?.[1] ?? ''
        socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
      })
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => upstream.close(() => resolve())))
    const { port } = upstream.address() as AddressInfo
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: `http://127.0.0.1:${port}` }] } },
    })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write('GET /304 HTTP/1.1\r\nhost: x\r\nif-none-match: "v1"\r\n\r\n')
    await eventually(() => client.received().includes('\r\n\r\n'), 'the 304 arrives')
    client.socket.write('GET /204 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
    await once(client.socket, 'end')
    const [notModified, noContent] = client.received().split(/(?=HTTP\/1\.1 )/)
    assert.match(notModified ?? '', /^HTTP\/1\.1 304 /)
    assert.match(notModified ?? '', /\r\netag: "v1"\r\n/i)
    assert.match(
      notModified ?? '',
      /\r\ncontent-length: 5\r\n/i,
      'a 304 may state it (RFC 9110 §8.6)',
    )
    assert.match(noContent ?? '', /^HTTP\/1\.1 204 /)
    assert.doesNotMatch(noContent ?? '', /content-length|transfer-encoding|hello/i)
    const access = aya.logs.filter((l) => l.msg === 'access')
    assert.deepEqual(
      access.map((l) => [l.status, l.error]),
      [
        [304, undefined],
        [204, undefined],
      ],
    )
  })

  test('aborts the upstream request when the client disconnects', async (t) => {
    let upstreamClosed!: () => void
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve
    })
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: tick\n\n')
      res.on('close', () => upstreamClosed())
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const req = httpRequest(`${aya.url}/long`)
    req.end()
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage]
    await once(res, 'data')
    req.destroy()
    await Promise.race([
      closed,
      sleep(3000).then(() => assert.fail('upstream request was not aborted')),
    ])
    const gauges = await inflight(aya.adminUrl)
    assert.equal(gauges.length, 1)
  })

  test('answers 404 with LB_ERR_NO_ROUTE when no route matches', async (t) => {
    const upstream = await startNamedUpstream('a')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/api' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/other`)
    assert.equal(res.statusCode, 404)
    const body = (await res.body.json()) as {
      error: { code: string; requestId: string; message: string }
    }
    assert.equal(body.error.code, 'LB_ERR_NO_ROUTE')
    assert.equal(body.error.requestId, res.headers['x-request-id'])
    assert.ok(body.error.message.length > 0)
  })

  test('answers 502 with LB_ERR_CONNECT_FAILED when the endpoint refuses connections', async (t) => {
    const port = await closedPort()
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: `http://127.0.0.1:${port}` }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/`)
    assert.equal(res.statusCode, 502)
    assert.equal(
      ((await res.body.json()) as { error: { code: string } }).error.code,
      'LB_ERR_CONNECT_FAILED',
    )
  })

  test('fails over to another endpoint when one refuses connections', async (t) => {
    const port = await closedPort()
    const upstream = await startNamedUpstream('alive')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: {
        u: {
          policy: 'round-robin',
          endpoints: [{ url: `http://127.0.0.1:${port}` }, { url: upstream.url }],
        },
      },
    })
    t.after(() => aya.close())
    for (let i = 0; i < 4; i++) {
      const res = await request(`${aya.url}/`)
      assert.equal(res.statusCode, 200)
      assert.equal(((await res.body.json()) as { name: string }).name, 'alive')
    }
  })

  test('answers 504 with LB_ERR_FIRST_BYTE_TIMEOUT when the upstream is slow to answer', async (t) => {
    const upstream = await startUpstream((_req, res) => {
      setTimeout(() => res.end('late'), 2000).unref()
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u', timeouts: { firstByteMs: 100 } }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/`)
    assert.equal(res.statusCode, 504)
    assert.equal(
      ((await res.body.json()) as { error: { code: string } }).error.code,
      'LB_ERR_FIRST_BYTE_TIMEOUT',
    )
  })

  test('cuts the client connection when the upstream stalls after the response started', async (t) => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
      res.write('partial')
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { timeouts: { idleMs: 150 }, endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/`)
    assert.equal(res.statusCode, 200)
    await assert.rejects(res.body.text(), 'a truncated body must not look complete')
  })

  test('resets an HTTP/1.0 client’s connection when the upstream fails mid-body: a response framed by its close must not end as if complete', async (t) => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('partial')
      setTimeout(() => res.socket?.destroy(), 20)
    })
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    const ended = new Promise<string>((resolve) => {
      client.socket.once('end', () => resolve('a clean close'))
      client.socket.once('error', (error: NodeJS.ErrnoException) => resolve(String(error.code)))
    })
    client.socket.write('GET / HTTP/1.0\r\nhost: x\r\n\r\n')
    assert.equal(await ended, 'ECONNRESET')
    assert.match(client.received(), /^HTTP\/1\.1 200 [\s\S]*\r\n\r\npartial$/)
  })

  test('answers 413 when a declared body exceeds maxBodyBytes', async (t) => {
    const upstream = await startNamedUpstream('a')
    t.after(() => upstream.close())
    const aya = await startAya({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxBodyBytes: 1000 }],
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const res = await request(`${aya.url}/`, { method: 'POST', body: Buffer.alloc(2000) })
    assert.equal(res.statusCode, 413)
    assert.equal(
      ((await res.body.json()) as { error: { code: string } }).error.code,
      'LB_ERR_BODY_TOO_LARGE',
    )
    assert.equal(upstream.requests.length, 0)
  })

  test('answers 413 when a chunked body grows past the route limit', async (t) => {
    const upstream = await startNamedUpstream('a')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u', maxBodyBytes: 1000 }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    async function* chunks() {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(500)
    }
    const res = await request(`${aya.url}/`, { method: 'POST', body: Readable.from(chunks()) })
    assert.equal(res.statusCode, 413)
    await res.body.dump()
  })

  test('strips hop-by-hop headers and those named in Connection, both ways', async (t) => {
    const upstream = await startUpstream((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'x-upstream-private',
        'x-upstream-private': 'secret',
        'keep-alive': 'timeout=5',
      })
      res.end(JSON.stringify(req.headers))
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    client.socket.write(
      'GET /h HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, x-drop-me\r\nX-Drop-Me: 1\r\n' +
        'Keep-Alive: timeout=9\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Keep: yes\r\n\r\n',
    )
    while (!client.received().includes('}')) await once(client.socket, 'data')
    const raw = client.received()
    client.close()
    const [head, body] = raw.split('\r\n\r\n') as [string, string]
    const seen = JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1)) as Record<
      string,
      string
    >
    assert.equal(seen['x-keep'], 'yes')
    for (const name of ['x-drop-me', 'keep-alive', 'te', 'proxy-connection'])
      assert.equal(seen[name], undefined, name)
    assert.equal(seen.host, 'example.test')
    assert.equal(seen['x-forwarded-for'], '127.0.0.1')
    assert.equal(seen['x-forwarded-proto'], 'http')
    assert.equal(seen['x-forwarded-host'], 'example.test')
    assert.match(seen.via ?? '', /1\.1 aya/)
    assert.ok(seen['x-request-id'])
    assert.doesNotMatch(head.toLowerCase(), /x-upstream-private/)
    assert.doesNotMatch(head.toLowerCase(), /keep-alive: timeout=5/)
  })

  test('propagates a caller x-request-id and generates one otherwise', async (t) => {
    const upstream = await startUpstream((req, res) => res.end(String(req.headers['x-request-id'])))
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const given = await request(`${aya.url}/`, { headers: { 'x-request-id': 'abc-123' } })
    assert.equal(await given.body.text(), 'abc-123')
    assert.equal(given.headers['x-request-id'], 'abc-123')
    const fresh = await request(`${aya.url}/`)
    const id = await fresh.body.text()
    assert.match(id, /^[0-9a-f-]{36}$/)
    assert.equal(fresh.headers['x-request-id'], id)
  })

  test('pins a client to one endpoint with a signed sticky cookie and ignores a forged one', async (t) => {
    const upstreams = await Promise.all(['a', 'b', 'c'].map(startNamedUpstream))
    t.after(() => Promise.all(upstreams.map((u) => u.close())))
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: {
        web: {
          policy: 'round-robin',
          sticky: {
            cookie: { name: 'aya_sticky', ttlMs: 60000, secret: 'a-test-secret-of-some-length' },
          },
          endpoints: upstreams.map((u) => ({ url: u.url })),
        },
      },
    })
    t.after(() => aya.close())
    const first = await request(`${aya.url}/`)
    const pinned = ((await first.body.json()) as { name: string }).name
    const setCookie = String(first.headers['set-cookie'])
    assert.match(setCookie, /^aya_sticky=[^;]+;.*HttpOnly/i)
    const cookie = setCookie.split(';')[0]!
    for (let i = 0; i < 9; i++) {
      const res = await request(`${aya.url}/`, { headers: { cookie } })
      assert.equal(((await res.body.json()) as { name: string }).name, pinned)
      assert.equal(res.headers['set-cookie'], undefined, 'a valid cookie is not re-issued')
    }
    const forged = `${cookie.slice(0, -3)}xyz`
    const names = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const res = await request(`${aya.url}/`, { headers: { cookie: forged } })
      names.add(((await res.body.json()) as { name: string }).name)
    }
    assert.equal(names.size, 3, 'a forged cookie falls back to the policy')
  })

  test('keeps a session on one endpoint with header affinity bound in shared state', async (t) => {
    const upstreams = await Promise.all(['a', 'b', 'c'].map(startNamedUpstream))
    t.after(() => Promise.all(upstreams.map((u) => u.close())))
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'chat' }],
      upstreams: {
        chat: {
          policy: 'round-robin',
          sticky: { header: 'x-session-id', ttlMs: 60000 },
          endpoints: upstreams.map((u) => ({ url: u.url })),
        },
      },
    })
    t.after(() => aya.close())
    const seen = new Map<string, Set<string>>()
    for (let i = 0; i < 18; i++) {
      const session = `s${i % 3}`
      const res = await request(`${aya.url}/`, { headers: { 'x-session-id': session } })
      const name = ((await res.body.json()) as { name: string }).name
      seen.set(session, (seen.get(session) ?? new Set()).add(name))
    }
    for (const [session, names] of seen)
      assert.equal(names.size, 1, `${session} moved: ${[...names]}`)
    const unpinned = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const res = await request(`${aya.url}/`)
      unpinned.add(((await res.body.json()) as { name: string }).name)
    }
    assert.equal(unpinned.size, 3, 'requests without the header follow the policy')
  })
})

async function inflight(adminUrl: string): Promise<string[]> {
  // Give the proxy a moment to account for the abort, then read the in-flight gauge.
  for (let i = 0; i < 50; i++) {
    const res = await request(`${adminUrl}/metrics`)
    const text = await res.body.text()
    const lines = text.split('\n').filter((l) => l.startsWith('aya_endpoint_inflight_requests{'))
    if (lines.length > 0 && lines.every((l) => l.endsWith(' 0'))) return lines
    await sleep(20)
  }
  assert.fail('in-flight did not return to 0 after the client aborted')
}
