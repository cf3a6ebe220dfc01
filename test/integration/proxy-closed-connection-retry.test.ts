import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { adminMetrics, metricSample, startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts'

type TestContext = { after(fn: () => Promise<void>): void }

/**
 * An HTTP upstream that answers 200 `ok <method>` to each request, except those `drops` picks:
 * it takes them and destroys their connection without a byte of an answer, as an upstream does
 * whose keep-alive timeout fires as the request arrives. `drops` is told the request and how many
 * came before it on its connection. `seen` lists each request as `METHOD /path`, as it arrived.
 */
async function startDroppingUpstream(
  t: TestContext,
  drops: (req: IncomingMessage, earlierOnConnection: number) => boolean,
): Promise<TestUpstream & { readonly seen: string[] }> {
  const seen: string[] = []
  const perConnection = new WeakMap<Socket, number>()
  const upstream = await startUpstream((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    const earlier = perConnection.get(req.socket) ?? 0
    perConnection.set(req.socket, earlier + 1)
    if (drops(req, earlier)) {
      req.socket.destroy()
      return
    }
    req.resume()
    req.on('end', () => res.end(`ok ${req.method}`))
  })
  t.after(() => upstream.close())
  return Object.assign(upstream, { seen })
}

/** Aya with one route to the given endpoints, access log on. Closed after the test. */
const startLoggingAyaTo = (t: TestContext, upstream: Record<string, unknown>) =>
  startAyaTo(t, upstream, { accessLog: true })

/** Status, error code and body of a request through Aya. */
async function answer(url: string, method = 'GET'): Promise<string> {
  const res = await request(url, { method })
  const body = await res.body.text()
  const code = res.headers['x-aya-error-code']
  return code === undefined ? `${res.statusCode} ${body}` : `${res.statusCode} ${code}`
}

/** The access line of the request to `url`, once written. */
async function accessLineOf(
  aya: { readonly logs: Array<Record<string, unknown>> },
  url: string,
): Promise<Record<string, unknown>> {
  const find = () => aya.logs.find((line) => line.msg === 'access' && line.url === url)
  await eventually(() => find() !== undefined, `an access line for ${url}`)
  return find()!
}

/** The second request on the first connection is dropped: the pooled connection went stale. */
const staleSecondRequest = (_req: IncomingMessage, earlier: number) => earlier === 1

describe('a request whose upstream connection closed before any answer', () => {
  test('a GET sent on a pooled connection the upstream closes unanswered is sent again and gets the 200', async (t) => {
    let dropped = false
    const upstream = await startDroppingUpstream(t, (_req, earlier) => {
      if (dropped || earlier !== 1) return false
      dropped = true
      return true
    })
    const aya = await startLoggingAyaTo(t, { endpoints: [{ url: upstream.url }] })

    assert.equal(await answer(`${aya.url}/warm`), '200 ok GET')
    assert.equal(await answer(`${aya.url}/x`), '200 ok GET')
    // The only endpoint, tried again: the close was the connection's, not the endpoint's.
    assert.deepEqual(upstream.seen, ['GET /warm', 'GET /x', 'GET /x'])
    const line = await accessLineOf(aya, '/x')
    assert.equal(line.attempts, 2)
    assert.equal(line.status, 200)
    assert.equal(line.error, undefined)
    // Unseen in the request and error series, the retry is counted on its own.
    assert.equal(
      metricSample(
        await adminMetrics(aya),
        'aya_upstream_retries_total',
        'route="route-0",upstream="u"',
      ),
      1,
    )
  })

  test('HEAD, PUT without a body and DELETE are sent again too (idempotent, RFC 9110 §9.2.2)', async (t) => {
    for (const method of ['HEAD', 'PUT', 'DELETE']) {
      const upstream = await startDroppingUpstream(t, staleSecondRequest)
      const aya = await startLoggingAyaTo(t, { endpoints: [{ url: upstream.url }] })

      await answer(`${aya.url}/warm`)
      const res = await request(`${aya.url}/x`, { method })
      await res.body.dump()
      assert.equal(res.statusCode, 200, method)
      assert.deepEqual(upstream.seen, ['GET /warm', `${method} /x`, `${method} /x`], method)
    }
  })

  test('a POST in the same situation is not sent again: 502 LB_ERR_UPSTREAM_RESET, and the upstream saw it once', async (t) => {
    const upstream = await startDroppingUpstream(t, staleSecondRequest)
    const aya = await startLoggingAyaTo(t, { endpoints: [{ url: upstream.url }] })

    assert.equal(await answer(`${aya.url}/warm`, 'POST'), '200 ok POST')
    assert.equal(await answer(`${aya.url}/x`, 'POST'), '502 LB_ERR_UPSTREAM_RESET')
    assert.deepEqual(upstream.seen, ['POST /warm', 'POST /x'])
    assert.equal((await accessLineOf(aya, '/x')).attempts, 1)
  })

  test('an LLM generation (a POST with its body held whole) is never sent twice', async (t) => {
    const upstream = await startDroppingUpstream(t, staleSecondRequest)
    const aya = await startAya({
      log: { access: false },
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { llama: { deployments: [{ upstream: 'pool' }] } },
      upstreams: { pool: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const chat = () =>
      request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama', messages: [{ role: 'user', content: 'Hi' }] }),
      })

    await (await chat()).body.dump()
    const res = await chat()
    await res.body.dump()
    assert.equal(res.statusCode, 502)
    assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_UPSTREAM_RESET')
    assert.deepEqual(upstream.seen, ['POST /v1/chat/completions', 'POST /v1/chat/completions'])
  })

  test('a GET is sent again once only: an upstream that drops every request gets it twice, then 502', async (t) => {
    const upstream = await startDroppingUpstream(t, () => true)
    const aya = await startLoggingAyaTo(t, { endpoints: [{ url: upstream.url }] })

    assert.equal(await answer(`${aya.url}/x`), '502 LB_ERR_UPSTREAM_RESET')
    assert.deepEqual(upstream.seen, ['GET /x', 'GET /x'])
  })

  test('a GET is sent again to another endpoint when there is one, as after a connect failure', async (t) => {
    const dropping = await startDroppingUpstream(t, () => true)
    const good = await startDroppingUpstream(t, () => false)
    const aya = await startLoggingAyaTo(t, {
      policy: 'round-robin',
      endpoints: [{ url: dropping.url }, { url: good.url }],
    })

    const paths = ['/a', '/b', '/c', '/d']
    for (const path of paths) assert.equal(await answer(`${aya.url}${path}`), '200 ok GET')
    // Round robin gives the dropping endpoint its share of first attempts, and none of those
    // requests went back to it.
    assert.ok(dropping.seen.length >= 1)
    assert.equal(new Set(dropping.seen).size, dropping.seen.length)
    assert.deepEqual(
      good.seen.toSorted(),
      paths.map((path) => `GET ${path}`),
    )
  })

  test('a GET whose answer began before the connection closed is not sent again', async (t) => {
    const upstream = await startUpstream((req) => {
      req.socket.write('HTTP/1.1 200 OK\r\ncontent-')
      req.socket.destroy()
    })
    t.after(() => upstream.close())
    const aya = await startLoggingAyaTo(t, { endpoints: [{ url: upstream.url }] })

    assert.equal((await answer(`${aya.url}/x`)).slice(0, 3), '502')
    assert.equal(upstream.requests.length, 1)
  })

  test('a GET whose upstream does not answer within firstByteMs is not sent again: 504, seen once', async (t) => {
    const upstream = await startUpstream(() => {})
    t.after(() => upstream.close())
    const aya = await startLoggingAyaTo(t, {
      endpoints: [{ url: upstream.url }],
      timeouts: { firstByteMs: 200 },
    })

    assert.equal(await answer(`${aya.url}/x`), '504 LB_ERR_FIRST_BYTE_TIMEOUT')
    assert.equal(upstream.requests.length, 1)
    assert.equal((await accessLineOf(aya, '/x')).attempts, 1)
  })
})
