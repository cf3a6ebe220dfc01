import assert from 'node:assert/strict'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { describe, it } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { Pool } from 'undici'
import { ProxyError } from '../../../src/proxy/errors.ts'
import {
  detailLine,
  type ExchangeStage,
  toUpstreamError,
  upstreamErrorDetail,
} from '../../../src/proxy/upstream-error.ts'
import { SELF_SIGNED_LOCALHOST } from '../../helpers/tls.ts'
import { closedPort } from '../../helpers/upstreams.ts'

/** The error undici gives for a GET to `origin`. */
async function undiciErrorAt(
  origin: string,
  connect: Pool.Options['connect'] = {},
): Promise<unknown> {
  const pool = new Pool(origin, { connect })
  const error = await pool.request({ path: '/', method: 'GET' }).then(
    () => undefined,
    (failure: unknown) => failure,
  )
  await pool.destroy()
  assert.notEqual(error, undefined, `expected the request to ${origin} to fail`)
  return error
}

/** The error undici gives for a GET to `server` (listened on here) over `scheme`. */
async function undiciErrorFrom(
  server: Server,
  scheme: 'http' | 'https',
  connect: Pool.Options['connect'] = {},
): Promise<unknown> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  try {
    return await undiciErrorAt(`${scheme}://127.0.0.1:${port}`, connect)
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** The error undici gives for an upstream that answers `reply` to any request. */
function undiciErrorFor(reply: string): Promise<unknown> {
  const server = createServer((socket) => socket.once('data', () => socket.end(reply)))
  return undiciErrorFrom(server, 'http')
}

const sent: ExchangeStage = 'sent'
const unsent: ExchangeStage = 'unsent'

describe('toUpstreamError', () => {
  it('calls a garbage status line or response a protocol error, not a reset', async () => {
    for (const reply of ['HTTP/1.1 9999 WHAT\r\n\r\n', 'GARBAGE\r\n\r\n']) {
      const mapped = toUpstreamError(await undiciErrorFor(reply), sent)
      assert.equal(mapped.code, 'LB_ERR_UPSTREAM_PROTOCOL', JSON.stringify(reply))
    }
  })

  it('calls a response head too large to parse a protocol error, not a reset', async () => {
    const reply = `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100_000)}\r\ncontent-length: 0\r\n\r\n`
    // undici stops reading mid-head and resets the connection: the server sees ECONNRESET.
    const server = createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => socket.end(reply))
    })
    const mapped = toUpstreamError(await undiciErrorFrom(server, 'http'), sent)
    assert.equal(mapped.code, 'LB_ERR_UPSTREAM_PROTOCOL')
  })

  it('calls a 100 Continue or a 101 switch nobody asked for a protocol error, not a reset', async () => {
    // Aya sends no Expect and no Upgrade: undici refuses either answer and drops the connection.
    for (const reply of [
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      // Without an Upgrade header undici trips its own assertion rather than its upgrade check.
      'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    ]) {
      const mapped = toUpstreamError(await undiciErrorFor(reply), sent)
      assert.equal(mapped.code, 'LB_ERR_UPSTREAM_PROTOCOL', JSON.stringify(reply))
    }
  })

  it('calls a connection closed or reset before any byte of an answer a reset, sent and retryable', async () => {
    const closed = await undiciErrorFor('')
    const reset = await undiciErrorFrom(
      createServer((socket) => socket.once('data', () => socket.resetAndDestroy())),
      'http',
    )
    for (const [what, error] of Object.entries({ closed, reset })) {
      const mapped = toUpstreamError(error, sent)
      assert.equal(mapped.code, 'LB_ERR_UPSTREAM_RESET', `${what}: ${String(error)}`)
      assert.equal(mapped.sentUpstream, true, what)
      assert.equal(mapped.retryable, true, what)
    }
  })

  it('calls a connection closed once the answer began a reset that is not retryable', async () => {
    const mapped = toUpstreamError(await undiciErrorFor('HTTP/1.1 200 OK\r\ncontent-'), 'answering')
    assert.equal(mapped.code, 'LB_ERR_UPSTREAM_RESET')
    assert.equal(mapped.retryable, false)
  })

  it('calls a first-byte timeout not retryable: the upstream may be at work on the request', async () => {
    // Reads the request and never answers.
    const server = createServer((socket) => socket.resume())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const pool = new Pool(`http://127.0.0.1:${port}`)
    const error = await pool.request({ path: '/', method: 'GET', headersTimeout: 50 }).then(
      () => assert.fail('expected a timeout'),
      (failure: unknown) => failure,
    )
    await pool.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const mapped = toUpstreamError(error, sent)
    assert.equal(mapped.code, 'LB_ERR_FIRST_BYTE_TIMEOUT')
    assert.equal(mapped.retryable, false)
  })

  it('calls a failed TLS handshake LB_ERR_UPSTREAM_TLS: an untrusted certificate, one for another host, a server that speaks no TLS', async () => {
    const answer = (socket: { end(text: string): void }) =>
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')
    const failures = {
      untrusted: await undiciErrorFrom(createTlsServer(SELF_SIGNED_LOCALHOST, answer), 'https'),
      // Trusted, but it names localhost, not 127.0.0.1.
      otherHost: await undiciErrorFrom(createTlsServer(SELF_SIGNED_LOCALHOST, answer), 'https', {
        ca: SELF_SIGNED_LOCALHOST.cert,
      }),
      plainHttp: await undiciErrorFrom(
        createServer((socket) => socket.once('data', () => answer(socket))),
        'https',
      ),
    }
    for (const [what, error] of Object.entries(failures)) {
      const mapped = toUpstreamError(error, unsent)
      assert.equal(mapped.code, 'LB_ERR_UPSTREAM_TLS', `${what}: ${String(error)}`)
      assert.equal(mapped.sentUpstream, false, what)
      assert.equal(mapped.retryable, true, what)
    }
  })

  it('calls any other failure before the request was sent a connect failure, retryable', async () => {
    const refused = await undiciErrorAt(`http://127.0.0.1:${await closedPort()}`)
    const handshakeReset = await undiciErrorFrom(
      createServer((socket) => socket.destroy()),
      'https',
    )
    for (const [what, error] of Object.entries({ refused, handshakeReset })) {
      const mapped = toUpstreamError(error, unsent)
      assert.equal(mapped.code, 'LB_ERR_CONNECT_FAILED', `${what}: ${String(error)}`)
      assert.equal(mapped.sentUpstream, false, what)
      assert.equal(mapped.retryable, true, what)
    }
  })
})

describe('upstreamErrorDetail', () => {
  it('gives the cause’s code and message, once each', () => {
    const cause = Object.assign(new Error('self-signed certificate'), {
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    })
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:8080'), {
      code: 'ECONNREFUSED',
    })
    assert.equal(
      upstreamErrorDetail(toUpstreamError(cause, unsent)),
      'DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate',
    )
    assert.equal(
      upstreamErrorDetail(toUpstreamError(refused, unsent)),
      'connect ECONNREFUSED 10.0.0.5:8080',
    )
  })

  it('keeps a long or multi-line cause to one line of at most 200 characters', () => {
    const cause = new Error(`first line\n${'x'.repeat(500)}`)
    const detail = upstreamErrorDetail(toUpstreamError(cause, sent))
    assert.ok(detail !== undefined)
    assert.equal(detail.length, 200)
    assert.ok(detail.startsWith('first line xxx'))
    assert.ok(!detail.includes('\n'))
  })

  it('gives nothing for a client’s error, or an upstream error with only its catalogue message', () => {
    const client = new ProxyError('LB_ERR_BAD_REQUEST', {
      source: 'downstream',
      message: 'Unexpected token in JSON: {"secret": ...',
    })
    assert.equal(upstreamErrorDetail(client), undefined)
    const plain = new ProxyError('LB_ERR_FIRST_BYTE_TIMEOUT', { source: 'upstream' })
    assert.equal(upstreamErrorDetail(plain), undefined)
  })
})

describe('detailLine', () => {
  it('puts text on one line of at most 200 characters, cut with an ellipsis', () => {
    assert.equal(detailLine('  engine\n\tdead  '), 'engine dead')
    const long = detailLine(`${'y'.repeat(300)}`)
    assert.equal(long?.length, 200)
    assert.ok(long?.endsWith('…'))
    assert.equal(detailLine('y'.repeat(200)), 'y'.repeat(200))
  })

  it('gives nothing for blank text', () => {
    assert.equal(detailLine(' \n '), undefined)
  })
})
