import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { adminMetrics, metricSample, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startUpstream } from '../helpers/upstreams.ts'

/**
 * An upstream that answers each request `answerMs` after its head, behind Aya with one connection
 * to it (and `timeouts`); the paths it was sent, and Aya's in-flight count for its endpoint.
 */
async function startOneConnection(
  t: { after(fn: () => Promise<void>): void },
  answerMs: number,
  timeouts?: Record<string, number>,
) {
  const seen: string[] = []
  const upstream = await startUpstream((req, res) => {
    seen.push(req.url ?? '')
    req.resume()
    setTimeout(() => res.end('ok'), answerMs)
  })
  t.after(() => upstream.close())
  const aya = await startAyaTo(t, {
    maxConnectionsPerEndpoint: 1,
    ...(timeouts ? { timeouts } : {}),
    endpoints: [{ url: upstream.url }],
  })
  const inflight = async () =>
    metricSample(
      await adminMetrics(aya),
      'aya_endpoint_inflight_requests',
      `upstream="u",endpoint="127.0.0.1:${upstream.port}"`,
    )
  return { seen, upstream, aya, inflight }
}

describe('waiting for a pooled upstream connection', () => {
  test('answers 504 to a request that waits for a connection longer than connectMs + firstByteMs, and never sends it', async (t) => {
    // Each answer takes 1200 ms, within the 1700-ms firstByteMs; one connection serves them in
    // turn. A request may wait connectMs + firstByteMs = 1800 ms for it (600 ms of slack each way,
    // so a loaded CI machine cannot tip it: the second waits 1200 ms of its 1800, the third would
    // wait 2400).
    const { seen, aya, inflight } = await startOneConnection(t, 1200, {
      connectMs: 100,
      firstByteMs: 1700,
    })
    const startedAt = performance.now()
    const answers = await Promise.all(
      ['/1', '/2', '/3'].map(async (path) => {
        const res = await request(`${aya.url}${path}`)
        return {
          path,
          status: res.statusCode,
          code: res.headers['x-aya-error-code'],
          afterMs: performance.now() - startedAt,
          body: await res.body.text(),
        }
      }),
    )
    const [first, second, third] = answers
    assert.equal(first!.status, 200)
    // The second got the connection after 1200 ms of its 1800: it waited, and was answered.
    assert.equal(second!.status, 200)
    // The third would have had it only after 2400 ms.
    assert.equal(third!.status, 504)
    assert.equal(third!.code, 'LB_ERR_FIRST_BYTE_TIMEOUT')
    assert.ok(third!.afterMs < 2400, `answered at ${Math.round(third!.afterMs)} ms`)
    await eventually(() => seen.length === 2, 'the second request upstream')
    await new Promise((resolve) => setTimeout(resolve, 1300))
    assert.deepEqual(
      seen.sort(),
      ['/1', '/2'],
      'the request given up on never reached the upstream',
    )
    assert.equal(await inflight(), 0)
  })

  test('stops counting a request against its endpoint as soon as its client leaves while it waits for a connection', async (t) => {
    const { seen, aya, inflight } = await startOneConnection(t, 1500)
    const first = request(`${aya.url}/first`)
    await eventually(() => seen.length === 1, 'the first request upstream')
    const leaving = new AbortController()
    const second = request(`${aya.url}/second`, { signal: leaving.signal }).catch(() => 'left')
    await eventually(async () => (await inflight()) === 2, 'the second request waiting')
    leaving.abort()
    assert.equal(await second, 'left')
    await eventually(async () => (await inflight()) === 1, 'the leaver no longer counted', 1000)
    assert.equal((await first).statusCode, 200)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.deepEqual(seen, ['/first'], 'the leaver’s request was never sent')
  })

  test('answers 408 at once to a client that stalls its body while its request waits for a connection', async (t) => {
    const { upstream, aya } = await startOneConnection(t, 1500, { idleMs: 300, firstByteMs: 5000 })
    const first = request(`${aya.url}/first`)
    await eventually(() => upstream.requests.length === 1, 'the first request upstream')
    const stalled = await openRawClient(aya.url)
    t.after(() => stalled.close())
    const startedAt = performance.now()
    // Its head, and never a byte of its body.
    stalled.socket.write('POST /stalled HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n')
    await eventually(() => stalled.received() !== '', 'an answer to the stalled body')
    const afterMs = performance.now() - startedAt
    assert.match(stalled.received(), /^HTTP\/1\.1 408 /)
    assert.ok(afterMs < 1200, `answered at ${Math.round(afterMs)} ms, not when a connection freed`)
    assert.equal((await first).statusCode, 200)
    assert.equal(upstream.requests.length, 1, 'the stalled request was never sent')
  })
})
