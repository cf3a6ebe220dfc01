import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { adminMetrics, metricSample, startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startNamedUpstream } from '../helpers/upstreams.ts'

/** Aya, access log on, with one route to one upstream; both closed after the test. */
async function startLoggingAya(t: { after(fn: () => Promise<void>): void }) {
  const upstream = await startNamedUpstream('u')
  t.after(() => upstream.close())
  return startAyaTo(t, { endpoints: [{ url: upstream.url }] }, { accessLog: true })
}

describe('the access log', () => {
  test('leaves out the credentials of a request target that carries userinfo', async (t) => {
    const aya = await startLoggingAya(t)
    const targets = ['http://alice:s3cret@api.example/x?q=1', 'ftp://bob:hunter2@files.example/']
    for (const target of targets) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`GET ${target} HTTP/1.1\r\nhost: a.example\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${target}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, target)
    }
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === targets.length, 'an access line per request')
    assert.deepEqual(
      access().map((line) => line.url),
      ['http://***@api.example/x?q=1', 'ftp://***@files.example/'],
    )
    const written = JSON.stringify(aya.logs)
    for (const secret of ['s3cret', 'hunter2', 'alice', 'bob'])
      assert.ok(!written.includes(secret), `no ${secret} in the log`)
  })

  test("leaves out the credentials of a CONNECT's target, which the HTTP server refuses itself", async (t) => {
    const aya = await startLoggingAya(t)
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write(
      'CONNECT alice:s3cret@a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n',
    )
    await eventually(() => client.received().includes('\r\n\r\n'), 'the 405')
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === 1, 'an access line')
    assert.equal(access()[0]!.url, '***@a.example:443')
    const written = JSON.stringify(aya.logs)
    for (const secret of ['s3cret', 'alice']) assert.ok(!written.includes(secret), `no ${secret}`)
  })

  test('writes one line, and counts the request, for each one the HTTP server answers itself', async (t) => {
    const aya = await startLoggingAya(t)
    const refusals: ReadonlyArray<readonly [string, number]> = [
      ['GET /x HTTP/1.1\r\nhost: a.example\r\nno colon here\r\n\r\n', 400],
      ['CONNECT a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n', 405],
      ['GET /x HTTP/1.1\r\nhost: a.example\r\nexpect: teapot\r\n\r\n', 417],
      [`GET /x HTTP/1.1\r\nhost: a.example\r\ncookie: ${'c'.repeat(20_000)}\r\n\r\n`, 431],
      ['GET /y HTTP/1.1\r\n\r\n', 400],
    ]
    for (const [request, status] of refusals) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(request)
      await eventually(() => client.received().includes('\r\n\r\n'), `the ${status}`)
      assert.match(client.received(), new RegExp(`^HTTP/1\\.1 ${status} `))
    }
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === refusals.length, 'an access line per request')
    assert.deepEqual(
      access().map((line) => [line.status, line.error, line.method, line.url, line.client]),
      [
        [400, 'LB_ERR_BAD_REQUEST', undefined, undefined, '127.0.0.1'],
        [405, 'LB_ERR_METHOD_NOT_ALLOWED', 'CONNECT', 'a.example:443', '127.0.0.1'],
        [417, 'LB_ERR_EXPECTATION_FAILED', 'GET', '/x', '127.0.0.1'],
        [431, 'LB_ERR_HEADERS_TOO_LARGE', undefined, undefined, '127.0.0.1'],
        [400, 'LB_ERR_BAD_REQUEST', 'GET', '/y', '127.0.0.1'],
      ],
    )
    const metrics = await adminMetrics(aya)
    for (const [, status] of refusals) {
      const labels = `route="none",upstream="none",endpoint="none",status="${status}"`
      const count = refusals.filter(([, other]) => other === status).length
      assert.equal(metricSample(metrics, 'aya_requests_total', labels), count, `${status} counted`)
    }
    assert.equal(
      metricSample(metrics, 'aya_errors_total', 'code="LB_ERR_HEADERS_TOO_LARGE",route="none"'),
      1,
    )
  })

  test("names the client of a request cut off in its head, whose close makes the server's 400 fail", async (t) => {
    const aya = await startLoggingAya(t)
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.on('error', () => {})
    // The head never ends: Node refuses the request once the client is gone, and the 400 it
    // writes then meets a closed socket.
    client.socket.write('GET /x HTTP/1.1\r\nhost: a.example\r\n')
    client.close()
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === 1, 'an access line')
    assert.deepEqual(
      access().map((line) => [line.status, line.error, line.client]),
      [[400, 'LB_ERR_BAD_REQUEST', '127.0.0.1']],
    )
  })

  test('writes no line for a client that hangs up in the middle of a body it was already answered for', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAya({
      log: { access: true },
      routes: [{ match: { pathPrefix: '/u' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    const closed = once(client.socket, 'close')
    // No route: answered 404 before any of the body is read, on a connection kept alive.
    client.socket.write('POST /x HTTP/1.1\r\nhost: a.example\r\ncontent-length: 100000\r\n\r\n')
    client.socket.write(Buffer.alloc(5000))
    await eventually(() => client.received().includes('"requestId"'), 'the 404')
    client.socket.end()
    await closed
    assert.match(client.received(), /^HTTP\/1\.1 404 /)
    assert.equal((client.received().match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer')
    const access = aya.logs.filter((line) => line.msg === 'access')
    assert.deepEqual(
      access.map((line) => [line.status, line.error]),
      [[404, 'LB_ERR_NO_ROUTE']],
    )
    const metrics = await adminMetrics(aya)
    const labels = 'route="none",upstream="none",endpoint="none",status="400"'
    assert.equal(metricSample(metrics, 'aya_requests_total', labels), undefined)
  })
})
