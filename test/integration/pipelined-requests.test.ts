import type { ServerResponse } from 'node:http'
import { describe, test } from 'node:test'
import { TrackedServer } from '../../src/util/http-server.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'

const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`

/** A TrackedServer whose handler holds every response until the test answers it. */
async function startHoldingServer(t: { after(fn: () => Promise<void>): void }) {
  const held: ServerResponse[] = []
  const server = new TrackedServer((_req, res) => held.push(res), { host: '127.0.0.1', port: 0 })
  const { port } = await server.listen()
  t.after(() => server.close(1000))
  return { server, held, url: `http://127.0.0.1:${port}` }
}

describe('pipelined requests on one connection', () => {
  test('are forgotten once their client hangs up, answered or not', async (t) => {
    const { server, held, url } = await startHoldingServer(t)
    for (let i = 0; i < 3; i++) {
      const client = await openRawClient(url)
      client.socket.on('error', () => {})
      client.socket.write(get('/a') + get('/b') + get('/c'))
      await eventually(() => held.length === 3 * (i + 1), 'the three requests handled')
      client.close()
    }
    // The handler answers what it was given, as Aya answers a client gone (499): a response
    // queued behind another on a closed connection never closes.
    for (const res of held) res.end()
    await eventually(() => server.inflightRequests === 0, 'no request of a gone client kept')
  })
})
