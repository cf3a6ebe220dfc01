import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, test } from 'node:test'
import {
  MAX_HANDLED_PER_CONNECTION,
  MAX_WAITING_PER_CONNECTION,
  type RefusedRequest,
  TrackedServer,
} from '../../src/util/http-server.ts'
import { startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startUpstream } from '../helpers/upstreams.ts'

const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`

/** A TrackedServer whose handler holds every response until the test answers it. */
async function startHoldingServer(t: { after(fn: () => Promise<void>): void }) {
  const held: ServerResponse[] = []
  const refused: RefusedRequest[] = []
  const handler = Object.assign((_req: IncomingMessage, res: ServerResponse) => held.push(res), {
    refused: (request: RefusedRequest) => refused.push(request),
  })
  const server = new TrackedServer(handler, { host: '127.0.0.1', port: 0 })
  const { port } = await server.listen()
  t.after(() => server.close(1000))
  return { server, held, refused, url: `http://127.0.0.1:${port}` }
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

  test('are handed on sixteen at a time, and all answered in order', async (t) => {
    const { held, url } = await startHoldingServer(t)
    const client = await openRawClient(url)
    t.after(() => client.close())
    const paths = Array.from({ length: 40 }, (_, i) => `/${i}`)
    client.socket.write(paths.map(get).join(''))
    await eventually(() => held.length >= MAX_HANDLED_PER_CONNECTION, 'the first requests handled')
    // All 40 came in one read, which Node parses whole: the rest wait for an answer.
    assert.equal(held.length, MAX_HANDLED_PER_CONNECTION)
    for (let answered = 0; answered < paths.length; answered++) {
      await eventually(() => held.length > answered, `request ${answered} handed on`)
      const res = held[answered]!
      res.end(res.req.url)
      assert.ok(held.length <= answered + MAX_HANDLED_PER_CONNECTION)
    }
    await eventually(
      () => client.received().split('HTTP/1.1 200').length - 1 === paths.length,
      'every answer',
    )
    const bodies = [...client.received().matchAll(/\r\n\r\n(\/\d+)/g)].map((match) => match[1])
    assert.deepEqual(bodies, paths)
  })

  test('are not read past the waiting ones while a slow first answer holds the answers behind it', async (t) => {
    const { server, held, url } = await startHoldingServer(t)
    let parsed = 0
    server.server.on('request', () => parsed++)
    const client = await openRawClient(url)
    t.after(() => client.close())
    client.socket.write(Array.from({ length: 40 }, (_, i) => get(`/${i}`)).join(''))
    await eventually(() => held.length === MAX_HANDLED_PER_CONNECTION, 'the first requests handled')
    // Answers behind the first are held until it ends, and Node reads the connection again as
    // they are: it must be stopped again at each request that waits, or it is read on and on.
    for (const res of held.slice(1)) res.end('behind')
    for (let write = 0; write < 3; write++) {
      client.socket.write(Array.from({ length: 10 }, (_, i) => get(`/more-${write}-${i}`)).join(''))
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    assert.ok(parsed <= 50, `${parsed} requests read while 24 waited`)
    held[0]!.end('first')
    for (let answered = 1; answered < 70; answered++) {
      await eventually(() => held.length > answered, `request ${answered} handed on`)
      if (!held[answered]!.writableEnded) held[answered]!.end('later')
    }
    await eventually(
      () => client.received().split('HTTP/1.1 200').length - 1 === 70,
      'every answer',
    )
    assert.equal(client.socket.destroyed, false)
  })

  test('cuts a connection that sends far more than it has answers for', async (t) => {
    const { held, refused, url } = await startHoldingServer(t)
    const client = await openRawClient(url)
    t.after(() => client.close())
    const sent = MAX_HANDLED_PER_CONNECTION + MAX_WAITING_PER_CONNECTION + 1
    client.socket.write(Array.from({ length: sent }, (_, i) => get(`/${i}`)).join(''))
    await eventually(() => client.socket.destroyed, 'the connection cut')
    assert.equal(held.length, MAX_HANDLED_PER_CONNECTION)
    // Logged and counted as refused: the request that overflowed.
    assert.deepEqual(
      refused.map((request) => [request.reason, request.url]),
      [['pipeline-overflow', `/${sent - 1}`]],
    )
  })

  test('are not answered by the 400 of an unparsable request behind them: the connection is cut', async (t) => {
    const { held, url } = await startHoldingServer(t)
    const client = await openRawClient(url)
    t.after(() => client.close())
    client.socket.write(get('/transfer'))
    await eventually(() => held.length === 1, 'the first request handled')
    client.socket.write('GARBAGE\r\n\r\n')
    await eventually(() => client.socket.destroyed, 'the connection cut')
    // A 400 here would read as the answer to /transfer, which may have reached the upstream.
    assert.equal(client.received(), '')
  })

  test('answers 400 to a request whose own body cannot be parsed, while it is handled', async (t) => {
    const { held, url } = await startHoldingServer(t)
    const client = await openRawClient(url)
    t.after(() => client.close())
    client.socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n')
    await eventually(() => held.length === 1, 'the request handled')
    client.socket.write('zz\r\n')
    await eventually(() => client.socket.destroyed, 'the connection closed')
    assert.match(client.received(), /^HTTP\/1\.1 400 /)
  })

  test('reach the upstream sixteen at once through Aya, with no listener-leak warning', async (t) => {
    const answers: ServerResponse[] = []
    const upstream = await startUpstream((req, res) => {
      req.resume()
      answers.push(res)
    })
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    t.after(() => process.off('warning', onWarning))
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    const paths = Array.from({ length: 20 }, (_, i) => `/${i}`)
    client.socket.write(paths.map(get).join(''))
    await eventually(() => answers.length === MAX_HANDLED_PER_CONNECTION, 'sixteen at the upstream')
    for (let answered = 0; answered < paths.length; answered++) {
      await eventually(() => answers.length > answered, `request ${answered} at the upstream`)
      answers[answered]!.end('ok')
    }
    await eventually(
      () => client.received().split('HTTP/1.1 200').length - 1 === paths.length,
      'every answer',
    )
    assert.deepEqual(
      upstream.requests.map((req) => req.url),
      paths,
    )
    assert.deepEqual(warnings, [])
  })
})
