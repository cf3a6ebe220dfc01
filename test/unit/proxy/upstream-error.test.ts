import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { Pool } from 'undici'
import { toUpstreamError } from '../../../src/proxy/upstream-error.ts'

/** The error undici gives for an upstream that answers `reply` to any request. */
async function undiciErrorFor(reply: string): Promise<unknown> {
  const server = createServer((socket) => socket.once('data', () => socket.end(reply)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const pool = new Pool(`http://127.0.0.1:${port}`)
  try {
    await pool.request({ path: '/', method: 'GET' })
    assert.fail('expected the request to fail')
  } catch (error) {
    return error
  } finally {
    await pool.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

describe('toUpstreamError', () => {
  it('calls a garbage status line or response a protocol error, not a reset', async () => {
    for (const reply of ['HTTP/1.1 9999 WHAT\r\n\r\n', 'GARBAGE\r\n\r\n']) {
      const mapped = toUpstreamError(await undiciErrorFor(reply), false)
      assert.equal(mapped.code, 'LB_ERR_UPSTREAM_PROTOCOL', JSON.stringify(reply))
    }
  })

  it('calls a connection closed before any answer a reset', async () => {
    const mapped = toUpstreamError(await undiciErrorFor(''), false)
    assert.equal(mapped.code, 'LB_ERR_UPSTREAM_RESET')
  })
})
