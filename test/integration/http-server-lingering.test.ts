import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { TrackedServer } from '../../src/util/http-server.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'

/** A server that answers 404 at once, without reading the request's body. */
async function startRefusingServer(
  t: { after(fn: () => Promise<void>): void },
  lingeringMs: number,
) {
  const server = new TrackedServer(
    (_req, res) => {
      res.writeHead(404, { 'content-length': 0 })
      res.end()
    },
    { host: '127.0.0.1', port: 0, lingeringMs },
  )
  const { port } = await server.listen()
  t.after(() => server.close(1000))
  return `http://127.0.0.1:${port}`
}

const post = (bodyBytes: number) =>
  `POST /nowhere HTTP/1.1\r\nhost: x\r\ncontent-length: ${bodyBytes}\r\n\r\n`

describe('a request answered before its body was read', () => {
  test('has its connection closed once the rest trickles in for longer than lingeringMs', {
    timeout: 10_000,
  }, async (t) => {
    const url = await startRefusingServer(t, 300)
    const client = await openRawClient(url)
    client.socket.on('error', () => {})
    client.socket.write(`${post(1_000_000)}0123456789`)
    await eventually(() => client.received().startsWith('HTTP/1.1 404'), 'the early answer')
    const trickle = setInterval(() => client.socket.write('x'), 50)
    t.after(() => clearInterval(trickle))
    const startedMs = performance.now()
    await once(client.socket, 'close')
    const lingeredMs = performance.now() - startedMs
    assert.ok(lingeredMs < 5_000, `closed after ${Math.round(lingeredMs)} ms`)
  })

  test('keeps its connection when the rest of the body comes within lingeringMs', async (t) => {
    const url = await startRefusingServer(t, 2_000)
    const client = await openRawClient(url)
    t.after(() => client.close())
    client.socket.write(`${post(20)}0123456789`)
    await eventually(() => client.received().startsWith('HTTP/1.1 404'), 'the early answer')
    client.socket.write('0123456789')
    client.socket.write(`GET /next HTTP/1.1\r\nhost: x\r\n\r\n`)
    await eventually(
      () => client.received().split('HTTP/1.1 404').length - 1 === 2,
      'the next request on the same connection answered',
    )
    assert.equal(client.socket.destroyed, false)
  })
})
