import assert from 'node:assert/strict'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { adminMetrics, metricSample, startAya } from '../helpers/aya.ts'

/** A TCP server on 127.0.0.1:0 that answers `reply` to whatever a connection first sends. */
async function startRawUpstream(reply: string): Promise<{ url: string; server: Server }> {
  const server = createServer((socket) => socket.once('data', () => socket.end(reply)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server }
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
})
