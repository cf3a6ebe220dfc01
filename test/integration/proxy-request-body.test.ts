import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { adminMetrics, metricSample, startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { closedPort, startUpstream } from '../helpers/upstreams.ts'

/** An upstream that reads the whole body, then answers with its size; it never times out. */
async function startCountingUpstream(readDelayMs = 0) {
  const upstream = await startUpstream((req, res) => {
    let bytes = 0
    const read = () => {
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length
      })
      req.on('end', () => res.end(JSON.stringify({ bytes })))
    }
    if (readDelayMs > 0) setTimeout(read, readDelayMs)
    else read()
  })
  upstream.server.requestTimeout = 0
  return upstream
}

describe('streamed request bodies', () => {
  test('answers 408 to a client that stops sending its body for idleMs, freeing the upstream connection for the next request', async (t) => {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, {
      maxConnectionsPerEndpoint: 1,
      timeouts: { idleMs: 300 },
      endpoints: [{ url: upstream.url }],
    })

    for (const framing of ['content-length: 100', 'transfer-encoding: chunked']) {
      const stalled = await openRawClient(aya.url)
      t.after(() => stalled.close())
      const firstPiece = framing.startsWith('content') ? '0123456789' : 'a\r\n0123456789\r\n'
      stalled.socket.write(`POST /stall HTTP/1.1\r\nhost: x\r\n${framing}\r\n\r\n${firstPiece}`)
      await eventually(() => stalled.received() !== '', `an answer to the stalled ${framing} body`)
      assert.match(stalled.received(), /^HTTP\/1\.1 408 /, framing)
      assert.match(stalled.received(), /x-aya-error-code: LB_ERR_REQUEST_TIMEOUT/)
      assert.match(stalled.received(), /connection: close/i)

      // The one upstream connection is free again.
      const next = await request(`${aya.url}/next`, { method: 'POST', body: 'hello' })
      assert.equal(next.statusCode, 200)
      assert.deepEqual(await next.body.json(), { bytes: 5 })
    }
  })

  test('does not count against the client a pause of the upstream in reading its body', async (t) => {
    // The upstream takes a second to start reading: Aya holds what the client sent meanwhile.
    const upstream = await startCountingUpstream(1000)
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, {
      timeouts: { idleMs: 200 },
      endpoints: [{ url: upstream.url }],
    })
    const size = 8 * 1024 * 1024
    const res = await request(`${aya.url}/upload`, { method: 'POST', body: Buffer.alloc(size) })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(await res.body.json(), { bytes: size })
  })

  test('answers the next request on a connection whose last body was never read: an error reply, or an upstream that answered first', async (t) => {
    const early = await startUpstream((_req, res) => res.end('early answer'))
    t.after(() => early.close())
    const aya = await startAya({
      log: { access: false },
      routes: [
        { match: { pathPrefix: '/refused' }, upstream: 'refused' },
        { match: { pathPrefix: '/' }, upstream: 'early' },
      ],
      upstreams: {
        refused: { endpoints: [{ url: `http://127.0.0.1:${await closedPort()}` }] },
        early: { endpoints: [{ url: early.url }] },
      },
    })
    t.after(() => aya.close())
    for (const path of ['/refused', '/early']) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      const size = 3_000_000
      client.socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\n`)
      client.socket.write(Buffer.alloc(size))
      client.socket.write(`GET ${path}/next HTTP/1.1\r\nhost: x\r\n\r\n`)
      const answers = () => client.received().match(/HTTP\/1\.1 \d{3}/g) ?? []
      await eventually(() => answers().length === 2, `two answers on one connection (${path})`)
      assert.deepEqual(
        answers(),
        path === '/refused' ? ['HTTP/1.1 502', 'HTTP/1.1 502'] : ['HTTP/1.1 200', 'HTTP/1.1 200'],
      )
    }
  })

  test('counts a chunked upload’s bytes in the access log and aya_request_bytes_total', async (t) => {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ name: 'up', match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    async function* pieces() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(30_000)
    }
    const res = await request(`${aya.url}/upload`, {
      method: 'POST',
      body: Readable.from(pieces()),
    })
    assert.deepEqual(await res.body.json(), { bytes: 300_000 })
    await eventually(() => aya.logs.some((l) => l.msg === 'access'), 'the access line')
    assert.equal(aya.logs.find((l) => l.msg === 'access')?.bytesIn, 300_000)
    assert.equal(
      metricSample(await adminMetrics(aya), 'aya_request_bytes_total', 'route="up"'),
      300_000,
    )
  })

  test('sends a streamed body to another endpoint when the first refuses the connection, whatever the method', async (t) => {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const refused = `http://127.0.0.1:${await closedPort()}`
    const aya = await startAyaTo(
      t,
      { policy: 'round-robin', endpoints: [{ url: refused }, { url: upstream.url }] },
      { accessLog: true },
    )
    async function* pieces() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(30_000)
    }
    // A chunked body and one of a declared length alike.
    for (const method of ['POST', 'PATCH', 'POST', 'PATCH']) {
      const res = await request(`${aya.url}/upload`, {
        method: method as 'POST' | 'PATCH',
        body: method === 'POST' ? Readable.from(pieces()) : Buffer.alloc(300_000),
      })
      assert.equal(res.statusCode, 200, method)
      assert.deepEqual(await res.body.json(), { bytes: 300_000 }, method)
    }
    await eventually(
      () => aya.logs.filter((l) => l.msg === 'access').length === 4,
      'an access line per request',
    )
    const attempts = aya.logs.filter((l) => l.msg === 'access').map((l) => l.attempts)
    assert.ok(attempts.includes(2), `some went to the refusing endpoint first: ${attempts}`)
    assert.equal(upstream.requests.length, 4, 'each reached the upstream once')
  })

  test('lets a body through that pauses for less than idleMs between its pieces', async (t) => {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, {
      timeouts: { idleMs: 400 },
      endpoints: [{ url: upstream.url }],
    })
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write('POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\n')
    for (const piece of ['ab', 'cd', 'ef']) {
      await sleep(250)
      client.socket.write(piece)
    }
    await eventually(() => client.received().includes('{"bytes":6}'), 'the whole body upstream')
    assert.match(client.received(), /^HTTP\/1\.1 200 /)
    client.socket.end()
    await once(client.socket, 'close')
  })
})

describe('Expect: 100-continue', () => {
  /** Sends the head of a POST that declares `bytes` and awaits 100 Continue; its first answer. */
  async function askToSend(url: string, path: string, bytes: number) {
    const client = await openRawClient(url)
    client.socket.write(
      `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: ${bytes}\r\n\r\n`,
    )
    await eventually(() => /^HTTP\/1\.1 \d{3} /.test(client.received()), `an answer on ${path}`)
    return client
  }

  /**
   * A counting upstream behind Aya whose listener takes bodies up to 1000 bytes: `/v1` the models
   * gateway, `/roomy` up to 5000 bytes, the rest to the upstream. Both closed after the test.
   */
  async function startLimited(t: { after(fn: () => Promise<void>): void }) {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const aya = await startAya({
      log: { access: false },
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxBodyBytes: 1000 }],
      routes: [
        { match: { pathPrefix: '/v1' }, gateway: 'models' },
        { match: { pathPrefix: '/roomy' }, upstream: 'u', maxBodyBytes: 5000 },
        { match: { pathPrefix: '/' }, upstream: 'u' },
      ],
      models: { llama: { deployments: [{ upstream: 'u' }] } },
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    return { upstream, aya }
  }

  test('answers 413 at once, without 100 Continue, to a declared body over maxBodyBytes, in the route’s error shape', async (t) => {
    const { upstream, aya } = await startLimited(t)

    for (const path of ['/upload', '/v1/chat/completions', '/roomy']) {
      const client = await askToSend(aya.url, path, 6000)
      t.after(() => client.close())
      await eventually(() => client.received().includes('}'), `the whole 413 on ${path}`)
      assert.match(client.received(), /^HTTP\/1\.1 413 /, path)
      assert.match(client.received(), /x-aya-error-code: LB_ERR_BODY_TOO_LARGE/, path)
      assert.match(client.received(), /connection: close/i, path)
      const body = client.received().slice(client.received().indexOf('\r\n\r\n') + 4)
      const error = (JSON.parse(body) as { error: Record<string, unknown> }).error
      // OpenAI's shape on the LLM route, Aya's elsewhere.
      if (path.startsWith('/v1')) assert.equal(typeof error.type, 'string', path)
      else assert.equal(error.code, 'LB_ERR_BODY_TOO_LARGE', path)
    }
    assert.equal(upstream.requests.length, 0)
  })

  test('sends 100 Continue and proxies the body when its declared length is within the route’s limit', async (t) => {
    const { aya } = await startLimited(t)

    for (const [path, bytes] of [
      ['/upload', 1000],
      ['/roomy', 4000],
    ] as const) {
      const client = await askToSend(aya.url, path, bytes)
      t.after(() => client.close())
      assert.match(client.received(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/, path)
      client.socket.write(Buffer.alloc(bytes))
      await eventually(
        () => client.received().includes('"bytes"'),
        `the upstream’s answer on ${path}`,
      )
      assert.match(client.received(), /HTTP\/1\.1 200 /, path)
      assert.match(client.received(), new RegExp(`\\{"bytes":${bytes}\\}$`), path)
    }
  })
})

describe('request bytes counted', () => {
  test('counts the bytes read of a body, not its declared length: none of one refused (413) before it was read', async (t) => {
    const upstream = await startCountingUpstream()
    t.after(() => upstream.close())
    const aya = await startAya({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxBodyBytes: 1000 }],
      routes: [
        { name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models' },
        { name: 'up', match: { pathPrefix: '/' }, upstream: 'u' },
      ],
      models: { llama: { deployments: [{ upstream: 'u' }] } },
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const accessLines = () => aya.logs.filter((l) => l.msg === 'access')

    for (const path of ['/upload', '/v1/chat/completions']) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: 500000\r\n\r\n`)
      client.socket.write(Buffer.alloc(2000))
      await eventually(() => /^HTTP\/1\.1 413 /.test(client.received()), `the 413 on ${path}`)
    }
    // A body within the limit counts whole.
    const res = await request(`${aya.url}/upload`, { method: 'POST', body: Buffer.alloc(600) })
    assert.deepEqual(await res.body.json(), { bytes: 600 })

    await eventually(() => accessLines().length === 3, 'three access lines')
    assert.deepEqual(
      accessLines().map((l) => [l.status, l.bytesIn]),
      [
        [413, 0],
        [413, 0],
        [200, 600],
      ],
    )
    const metrics = await adminMetrics(aya)
    assert.equal(metricSample(metrics, 'aya_request_bytes_total', 'route="up"'), 600)
    assert.equal(metricSample(metrics, 'aya_request_bytes_total', 'route="llm"'), undefined)
  })
})
