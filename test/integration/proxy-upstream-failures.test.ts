import assert from 'node:assert/strict'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { describe, test } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { adminMetrics, metricSample, startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { SELF_SIGNED_LOCALHOST } from '../helpers/tls.ts'
import { closedPort, startNamedUpstream } from '../helpers/upstreams.ts'

/** A TCP server on 127.0.0.1:0 that answers `reply` to whatever a connection first sends. */
async function startRawUpstream(reply: string): Promise<{ url: string; server: Server }> {
  const server = createServer((socket) => socket.once('data', () => socket.end(reply)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server }
}

/** Listens on 127.0.0.1:0 and gives the server's `https://` URL. */
async function httpsUrlOf(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/**
 * Aya in front of `bad` and a plain HTTP endpoint that answers `{ name: 'good' }`, taken in turn:
 * what each of `requests` GETs is answered, as status and error code or endpoint name.
 */
async function answersWithGoodEndpointBeside(
  t: { after(fn: () => Promise<void>): void },
  bad: string,
  requests: number,
): Promise<string[]> {
  const good = await startNamedUpstream('good')
  t.after(() => good.close())
  const aya = await startAyaTo(t, {
    policy: 'round-robin',
    endpoints: [{ url: bad }, { url: good.url }],
  })
  const answers: string[] = []
  for (let i = 0; i < requests; i++) {
    const res = await request(`${aya.url}/x`)
    const body = (await res.body.json()) as { name?: string }
    answers.push(`${res.statusCode} ${res.headers['x-aya-error-code'] ?? body.name}`)
  }
  return answers
}

/** What Aya answers a GET routed to `endpoint` alone: status and error code. */
async function answerFromOnly(
  t: { after(fn: () => Promise<void>): void },
  endpoint: string,
): Promise<string> {
  const aya = await startAyaTo(t, { endpoints: [{ url: endpoint }] })
  const res = await request(`${aya.url}/x`)
  await res.body.dump()
  return `${res.statusCode} ${res.headers['x-aya-error-code']}`
}

describe('upstream failures', () => {
  test('answers 502 with LB_ERR_UPSTREAM_PROTOCOL to an upstream status outside 100 to 599 (600, 999, 099)', async (t) => {
    for (const status of ['600', '999', '099']) {
      const upstream = await startRawUpstream(
        `HTTP/1.1 ${status} Odd\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok`,
      )
      t.after(() => upstream.server.close())
      const aya = await startAya({
        log: { access: false },
        routes: [{ name: 'odd', match: { pathPrefix: '/' }, upstream: 'u' }],
        upstreams: { u: { endpoints: [{ url: upstream.url }] } },
      })
      t.after(() => aya.close())

      const res = await request(`${aya.url}/x`)
      assert.equal(res.statusCode, 502, status)
      assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_UPSTREAM_PROTOCOL', status)
      const body = (await res.body.json()) as { error: { code: string } }
      assert.equal(body.error.code, 'LB_ERR_UPSTREAM_PROTOCOL')
      const metrics = await adminMetrics(aya)
      assert.equal(
        metricSample(metrics, 'aya_errors_total', 'code="LB_ERR_UPSTREAM_PROTOCOL",route="odd"'),
        1,
        status,
      )
    }
  })

  test('answers 502 with LB_ERR_UPSTREAM_PROTOCOL to a body in a transfer coding other than chunked, rather than relay it still coded as a clean 200', async (t) => {
    const coded = gzipSync('hello')
    const upstream = await startRawUpstream(
      `HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n${coded.length.toString(16)}\r\n${coded.toString('latin1')}\r\n0\r\n\r\n`,
    )
    t.after(() => upstream.server.close())
    assert.equal(await answerFromOnly(t, upstream.url), '502 LB_ERR_UPSTREAM_PROTOCOL')
  })

  test('relays a chunked body, and a HEAD answered with any transfer coding, unchanged', async (t) => {
    const chunked = await startRawUpstream(
      'HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nconnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    )
    t.after(() => chunked.server.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: chunked.url }] })
    const res = await request(`${aya.url}/x`)
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'ok')

    const head = await startRawUpstream(
      'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n',
    )
    t.after(() => head.server.close())
    const headAya = await startAyaTo(t, { endpoints: [{ url: head.url }] })
    const headRes = await request(`${headAya.url}/x`, { method: 'HEAD' })
    assert.equal(headRes.statusCode, 200)
    await headRes.body.dump()
  })

  test('answers 502 with LB_ERR_UPSTREAM_TLS when an https endpoint’s certificate is not trusted, and tries another endpoint first', async (t) => {
    let served = 0
    const untrusted = createTlsServer(SELF_SIGNED_LOCALHOST, (socket) => {
      served++
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')
    })
    t.after(() => untrusted.close())
    const url = await httpsUrlOf(untrusted)

    assert.equal(await answerFromOnly(t, url), '502 LB_ERR_UPSTREAM_TLS')
    // Nothing was sent, so the request goes to the next endpoint instead of failing.
    assert.deepEqual(await answersWithGoodEndpointBeside(t, url, 4), Array(4).fill('200 good'))
    assert.equal(served, 0)
  })

  test('answers 502 with LB_ERR_CONNECT_FAILED when an https endpoint resets the TLS handshake, and tries another endpoint first', async (t) => {
    const resetting = createServer((socket) => socket.destroy())
    t.after(() => resetting.close())
    const url = await httpsUrlOf(resetting)

    assert.equal(await answerFromOnly(t, url), '502 LB_ERR_CONNECT_FAILED')
    assert.deepEqual(await answersWithGoodEndpointBeside(t, url, 4), Array(4).fill('200 good'))
  })

  test('logs why an upstream failed as errorDetail on the access line: an untrusted certificate, a refused connection, an invalid status', async (t) => {
    const untrusted = createTlsServer(SELF_SIGNED_LOCALHOST, (socket) => socket.end())
    t.after(() => untrusted.close())
    const odd = await startRawUpstream(
      'HTTP/1.1 600 Odd\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok',
    )
    t.after(() => odd.server.close())
    const urls = {
      tls: await httpsUrlOf(untrusted),
      refused: `http://127.0.0.1:${await closedPort()}`,
      odd: odd.url,
    }
    const aya = await startAya({
      routes: Object.keys(urls).map((name) => ({
        name,
        match: { pathPrefix: `/${name}` },
        upstream: name,
      })),
      upstreams: Object.fromEntries(
        Object.entries(urls).map(([name, url]) => [name, { endpoints: [{ url }] }]),
      ),
    })
    t.after(() => aya.close())

    for (const path of ['/tls', '/refused', '/odd', '/unrouted']) {
      const res = await request(`${aya.url}${path}`)
      await res.body.dump()
    }
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === 4, 'four access lines')
    assert.deepEqual(
      access().map((line) => [line.url, line.error, line.errorDetail]),
      [
        ['/tls', 'LB_ERR_UPSTREAM_TLS', 'DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate'],
        [
          '/refused',
          'LB_ERR_CONNECT_FAILED',
          `connect ECONNREFUSED ${urls.refused.slice('http://'.length)}`,
        ],
        ['/odd', 'LB_ERR_UPSTREAM_PROTOCOL', 'the upstream answered with the invalid status 600'],
        // Aya's own reply: the code says it all.
        ['/unrouted', 'LB_ERR_NO_ROUTE', undefined],
      ],
    )
  })
})
