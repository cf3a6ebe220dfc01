import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { describe, test } from 'node:test'
import { whenClientGone } from '../../../src/proxy/when-client-gone.ts'

/**
 * A real server and a raw client that sends one request; resolves with the server's side of it
 * once its body has been read. The client socket is returned so the test can hang up.
 */
async function oneRequest(t: { after(fn: () => void): void }) {
  let arrive: (sides: { req: IncomingMessage; res: ServerResponse }) => void = () => {}
  const arrived = new Promise<{ req: IncomingMessage; res: ServerResponse }>((resolve) => {
    arrive = resolve
  })
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => arrive({ req, res }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  // A server closing a connection the client has not read from resets it: that is not the test.
  client.on('error', () => {})
  client.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi')
  const { req, res } = await arrived
  return { req, res, client }
}

/** The server's socket for `req` has closed (a reset, after a response the client never read, included). */
const closed = (req: IncomingMessage): Promise<void> =>
  new Promise((resolve) => {
    if (req.socket.destroyed) resolve()
    else req.socket.once('close', () => resolve())
  })

describe('whenClientGone', () => {
  test('calls gone once when the client hangs up while it watches', async (t) => {
    const { res, client } = await oneRequest(t)
    let calls = 0
    whenClientGone(res, () => calls++)
    client.destroy()
    await once(res, 'close')
    assert.equal(calls, 1)
  })

  test('calls gone at once for a client that hung up before it started watching', async (t) => {
    const { req, res, client } = await oneRequest(t)
    client.destroy()
    await closed(req)
    let calls = 0
    whenClientGone(res, () => calls++)
    assert.equal(calls, 1, 'a close that already happened is not emitted again')
  })

  test('does not call gone after the response finished, nor once unsubscribed', async (t) => {
    const finished = await oneRequest(t)
    let calls = 0
    finished.res.end('ok')
    await once(finished.res, 'finish')
    whenClientGone(finished.res, () => calls++)
    finished.client.destroy()
    await closed(finished.req)

    const watched = await oneRequest(t)
    const stop = whenClientGone(watched.res, () => calls++)
    stop()
    watched.client.destroy()
    await closed(watched.req)
    assert.equal(calls, 0)
  })
})
