import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { fetchMetricsPage } from '../../../src/llm/fetch-metrics-page.ts'

const PAGE = 'vllm:num_requests_running 3\nvllm:num_requests_waiting 2\n'

const ROUTES: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/plain': (_req, res) => res.end(PAGE),
  '/x-gzip': (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'x-gzip' })
    res.end(gzipSync(PAGE))
  },
  '/br': (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'br' })
    res.end(brotliCompressSync(PAGE))
  },
  '/corrupt': (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'gzip' })
    res.end('not gzip')
  },
  '/to-file': (_req, res) => {
    res.writeHead(302, { location: 'file:///etc/passwd' })
    res.end()
  },
  '/to-plain': (_req, res) => {
    res.writeHead(303, { location: '/plain' })
    res.end()
  },
  '/gone': (_req, res) => {
    res.writeHead(404)
    res.end(PAGE)
  },
}

describe('fetch metrics page', () => {
  let origin = ''
  const server = createServer((req, res) => ROUTES[req.url!]!(req, res))
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => {
    server.closeAllConnections()
    server.close()
  })
  const fetchPage = (path: string) =>
    fetchMetricsPage(`${origin}${path}`, {
      maxBodyBytes: 1024 * 1024,
      signal: AbortSignal.timeout(10_000),
    })

  it('reads a plain page, an x-gzip one, and one a 303 points at', async () => {
    const page = { ok: true, text: PAGE }
    assert.deepEqual(await fetchPage('/plain'), page)
    assert.deepEqual(await fetchPage('/x-gzip'), page)
    assert.deepEqual(await fetchPage('/to-plain'), page)
  })

  it('gives no page, and says why, for an encoding it did not ask for, a redirect off http, or a status not 200', async () => {
    assert.deepEqual(await fetchPage('/br'), { ok: false, reason: 'content-encoding br, not gzip' })
    assert.deepEqual(await fetchPage('/to-file'), { ok: false, reason: 'status 302' })
    assert.deepEqual(await fetchPage('/gone'), { ok: false, reason: 'status 404' })
  })

  it('rejects a body that claims gzip and is not', async () => {
    await assert.rejects(fetchPage('/corrupt'))
  })
})
