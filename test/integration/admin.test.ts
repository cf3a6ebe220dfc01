import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startNamedUpstream, startUpstream } from '../helpers/upstreams.ts'

/** One upstream behind one route named `main` to group `web`. */
async function startOneRoute(t: import('node:test').TestContext) {
  const upstream = await startNamedUpstream('u')
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ name: 'main', match: { pathPrefix: '/' }, upstream: 'web' }],
    upstreams: { web: { endpoints: [{ url: upstream.url }] } },
  })
  t.after(() => aya.close())
  return { upstream, aya }
}

describe('admin listener and observability', () => {
  test('serves /healthz, /ready and Prometheus /metrics with aya_ metrics', async (t) => {
    const { upstream, aya } = await startOneRoute(t)
    assert.equal((await request(`${aya.adminUrl}/healthz`)).statusCode, 200)
    assert.equal((await request(`${aya.adminUrl}/ready`)).statusCode, 200)
    for (let i = 0; i < 3; i++) await (await request(`${aya.url}/x`)).body.dump()
    await (await request(`${aya.url}/x`, { method: 'POST', body: 'hello' })).body.dump()
    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    const endpoint = new URL(upstream.url).host
    assert.match(
      metrics,
      new RegExp(
        `aya_requests_total\\{route="main",upstream="web",endpoint="${endpoint}",status="200"\\} 4`,
      ),
    )
    assert.match(
      metrics,
      /aya_request_duration_seconds_bucket\{le="[\d.]+",route="main",upstream="web"\}/,
    )
    assert.match(
      metrics,
      new RegExp(`aya_endpoint_inflight_requests\\{upstream="web",endpoint="${endpoint}"\\} 0`),
    )
    assert.match(metrics, /aya_request_bytes_total\{route="main"\} 5/)
  })

  test('writes one JSON access log line per request with id, route, endpoint, status, bytes and duration', async (t) => {
    const { upstream, aya } = await startOneRoute(t)
    const res = await request(`${aya.url}/logged`, { headers: { 'x-request-id': 'req-42' } })
    await res.body.dump()
    await aya.close()
    const line = aya.logs.find((l) => l.msg === 'access' && l.requestId === 'req-42')
    assert.ok(line, 'access line written')
    assert.equal(line.route, 'main')
    assert.equal(line.upstream, 'web')
    assert.equal(line.endpoint, new URL(upstream.url).host)
    assert.equal(line.status, 200)
    assert.equal(typeof line.bytesOut, 'number')
    assert.ok((line.bytesOut as number) > 0)
    assert.equal(typeof line.durationMs, 'number')
  })

  test('answers a method other than GET or HEAD with 405 and an Allow header naming GET and HEAD', async (t) => {
    const { aya } = await startOneRoute(t)
    for (const path of ['/ready', '/metrics', '/nowhere']) {
      const res = await request(`${aya.adminUrl}${path}`, { method: 'POST', body: 'x' })
      await res.body.dump()
      assert.equal(res.statusCode, 405, path)
      assert.equal(res.headers.allow, 'GET, HEAD', path)
    }
  })

  test('answers CONNECT on the admin listener with 405 and an Allow header naming GET and HEAD', async (t) => {
    const { aya } = await startOneRoute(t)
    const client = await openRawClient(aya.adminUrl)
    t.after(() => client.close())
    client.socket.write('CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n')
    await once(client.socket, 'end')
    assert.match(client.received(), /^HTTP\/1\.1 405 /)
    assert.match(client.received(), /\r\nallow: GET, HEAD\r\n/)
  })

  test('answers /ready with 503 and status draining while in-flight requests drain', async (t) => {
    // Never answers: the request stays in flight until the drain deadline cuts it.
    const upstream = await startUpstream(() => {})
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: { web: { endpoints: [{ url: upstream.url }] } },
    })
    const before = await request(`${aya.adminUrl}/ready`)
    assert.deepEqual(await before.body.json(), { status: 'ready' })
    const pending = request(`${aya.url}/hang`).catch((error: Error) => error)
    await eventually(() => upstream.requests.length === 1, 'the request upstream')
    const closed = aya.aya.close(1_000)
    const during = await request(`${aya.adminUrl}/ready`)
    assert.equal(during.statusCode, 503)
    assert.deepEqual(await during.body.json(), { status: 'draining' })
    await closed
    await pending
  })
})
