import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { MAX_TIMER_MS } from './clock.ts'

export interface HttpServerOptions {
  readonly host: string
  readonly port: number
  /** How long an idle keep-alive client connection is kept, ms. */
  readonly keepAliveTimeoutMs?: number
  /**
   * How long the rest of a request body is read (and thrown away) after its answer went out
   * before it, ms; then the connection is closed. Default 30 s, nginx's `lingering_time`.
   */
  readonly lingeringMs?: number
}

const DEFAULT_LINGERING_MS = 30_000

/** Handles the requests of a TrackedServer. */
export interface RequestHandler {
  (req: IncomingMessage, res: ServerResponse): void
  /**
   * Takes, in place of Node's default, a request whose client waits for `100 Continue` before
   * sending its body: it must send that (`res.writeContinue()`) to read the body, and may instead
   * answer at once. Node's default sends it, then hands the request to the handler.
   */
  readonly checkContinue?: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  /** The methods it serves, as the `Allow` of the 405 that answers CONNECT; default PROXY_METHODS. */
  readonly allowedMethods?: string | undefined
  /** Told of each request the server answered itself, which the handler never saw. */
  readonly refused?: ((request: RefusedRequest) => void) | undefined
}

/**
 * Why the server answered a request itself, with the status Node's own reply has: 400 for one it
 * could not parse (`unparsable`), 405 for CONNECT (`connect`), 408 for a head that came too slowly
 * (`head-timeout`), 413 for chunk extensions too large (`chunk-extensions-too-large`), 417 for an
 * expectation other than 100-continue (`expectation`), 431 for a head too large (`head-too-large`),
 * 400 for an HTTP/1.1 request without Host (`missing-host`).
 */
export type RefusalReason =
  | 'unparsable'
  | 'connect'
  | 'head-timeout'
  | 'chunk-extensions-too-large'
  | 'expectation'
  | 'head-too-large'
  | 'missing-host'
  /** More pipelined requests than a connection may have waiting: the connection is cut. */
  | 'pipeline-overflow'

/** A request the server answered itself. Method, target and headers only of one it parsed. */
export interface RefusedRequest {
  readonly reason: RefusalReason
  readonly method: string | undefined
  readonly url: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly remoteAddress: string | undefined
}

/** Node's replies to a request it cannot parse, by the parser error's code (its `socketOnError`). */
const PARSE_FAILURES: Readonly<Record<string, { reason: RefusalReason; status: number }>> = {
  HPE_HEADER_OVERFLOW: { reason: 'head-too-large', status: 431 },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { reason: 'chunk-extensions-too-large', status: 413 },
  ERR_HTTP_REQUEST_TIMEOUT: { reason: 'head-timeout', status: 408 },
}
const UNPARSABLE = { reason: 'unparsable', status: 400 } as const

/** A parser's refusal (`HPE_*`) or a head that took too long, not the connection's own failure. */
function isRequestFailure(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT')
}

/** A refusal of a request Node parsed: what it asked is known. */
function parsedRefusal(reason: RefusalReason, req: IncomingMessage): RefusedRequest {
  return {
    reason,
    method: req.method,
    url: req.url,
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
  }
}

/**
 * RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request without Host. Node does so itself by
 * default, but tells nobody, so such a request went unlogged and uncounted; the server checks it
 * here instead, as Node would, and reports it as a refusal.
 */
function lacksHost(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined
}

/**
 * Requests of one connection in the handler at once. Node hands on every pipelined request it
 * reads, however long the answers before them take: 3 MB of small requests sent at once on one
 * connection to a slow upstream held 1.1 GB. Past this many, a connection's requests wait, and it
 * is not read until they have been handed on; nginx and Envoy take one at a time.
 */
export const MAX_HANDLED_PER_CONNECTION = 16
/**
 * Requests that may wait so. More can only come from a client that sent them all at once, far
 * ahead of its answers (Node parses all the data of one read before it stops): it is cut off.
 */
export const MAX_WAITING_PER_CONNECTION = 128

/** The fields by which Node's HTTP server stops reading a connection whose answers back up. */
interface NodeHttpSocket extends Socket {
  _paused?: boolean
  parser?: { resume(): void } | null
}

/**
 * Stops reading a connection as Node does when its answers back up: `_paused` keeps Node's own
 * reads of a request body from resuming it, and has its parser stop at the end of the data in hand.
 */
function stopReading(socket: Socket): void {
  ;(socket as NodeHttpSocket)._paused = true
  socket.pause()
}

/** Reads the connection again, unless Node holds it for answers the client has not read. */
function resumeReading(socket: Socket): void {
  const paused = socket as NodeHttpSocket
  if (paused._paused !== true || socket.writableNeedDrain) return
  paused._paused = false
  paused.parser?.resume()
  socket.resume()
}

/** What a proxy listener passes on: every method but CONNECT and TRACE. */
export const PROXY_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

/**
 * An HTTP/1.1 server that tracks its connections so that `close` can stop accepting, let
 * in-flight requests finish up to a deadline, then cut what is left.
 */
export class TrackedServer {
  readonly server: Server
  #sockets = new Set<import('node:net').Socket>()
  /**
   * Each connection's responses not yet over, so a close can mark those whose head is still to be
   * written. Dropped with the connection: Node never emits `close` for a response queued behind
   * another on a pipelined connection that closes, and each such response was kept, with its
   * request and socket, for the life of the process.
   */
  #inflight = new Map<import('node:net').Socket, Set<ServerResponse>>()
  /** Each connection's requests past MAX_HANDLED_PER_CONNECTION, in order, while it is not read. */
  #waiting = new Map<import('node:net').Socket, Array<() => void>>()
  /** Each connection's latest request, whose body may still be arriving after its answer. */
  #latest = new WeakMap<import('node:net').Socket, IncomingMessage>()

  constructor(handler: RequestHandler, options: HttpServerOptions) {
    const tracked =
      (handle: (req: IncomingMessage, res: ServerResponse) => void) =>
      (req: IncomingMessage, res: ServerResponse) => {
        if (lacksHost(req)) {
          refuseMissingHost(req, res)
          return
        }
        const socket = req.socket
        this.#latest.set(socket, req)
        const start = () => {
          let responses = this.#inflight.get(socket)
          if (responses === undefined) {
            responses = new Set()
            this.#inflight.set(socket, responses)
          }
          responses.add(res)
          const inflight = responses
          res.once('close', () => {
            // Answered (or given up) before its body was read in full: bound the rest.
            if (res.writableFinished) this.#lingerFor(req)
            inflight.delete(res)
            if (inflight.size < MAX_HANDLED_PER_CONNECTION) this.#handOnWaiting(socket)
            if (inflight.size > 0) return
            if (this.#inflight.get(socket) === inflight) this.#inflight.delete(socket)
            if (this.#closing) socket.end()
          })
          if (this.#closing) res.setHeader('connection', 'close')
          handle(req, res)
        }
        const waiting = this.#waiting.get(socket)
        if (waiting === undefined) {
          if ((this.#inflight.get(socket)?.size ?? 0) < MAX_HANDLED_PER_CONNECTION) start()
          else {
            this.#waiting.set(socket, [start])
            stopReading(socket)
          }
        } else if (waiting.length < MAX_WAITING_PER_CONNECTION) {
          waiting.push(start)
          // Again at each: Node reads a paused connection again whenever an answer's writes
          // drain, so answers finished behind a slow first one would let it be read on and on.
          stopReading(socket)
        } else {
          // No answer can be written out of turn, so the connection is cut, and the request that
          // overflowed is logged and counted as refused.
          handler.refused?.(parsedRefusal('pipeline-overflow', req))
          socket.destroy()
        }
      }
    const refuseMissingHost = (req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(400, { connection: 'close' })
      res.end()
      handler.refused?.(parsedRefusal('missing-host', req))
    }
    this.server = createServer(
      {
        // Checked in `tracked` and for expectations below, where the refusal is reported.
        requireHostHeader: false,
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
        // Streams (SSE, long uploads) may last far longer than any fixed request timeout.
        requestTimeout: 0,
        headersTimeout: 60_000,
        noDelay: true,
      },
      tracked(handler),
    )
    // Node keeps the first 2,000 header lines and drops the rest without a word, while its parser
    // still frames the message by them: a Content-Length past them left its body behind (a 200
    // for a request that lost it), a second Host passed the duplicate check. The head's size
    // limit (16 KiB) is what bounds it; a head within it is seen whole.
    this.server.maxHeadersCount = 0
    if (handler.checkContinue !== undefined) {
      this.server.on('checkContinue', tracked(handler.checkContinue))
    }
    // CONNECT asks for a tunnel, which an L7 reverse proxy does not open: say so, not just hang up.
    const notAllowed = `HTTP/1.1 405 Method Not Allowed\r\nallow: ${handler.allowedMethods ?? PROXY_METHODS}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`
    this.server.on('connect', (req, socket) => {
      socket.end(notAllowed)
      handler.refused?.(parsedRefusal('connect', req))
    })
    // Node's own answers, made here as Node makes them, so that the handler is told of each: a
    // request refused before it reached the handler must still be logged and counted.
    this.server.on('checkExpectation', (req, res) => {
      if (lacksHost(req)) {
        refuseMissingHost(req, res)
        return
      }
      res.writeHead(417)
      res.end()
      handler.refused?.(parsedRefusal('expectation', req))
    })
    this.server.on('clientError', (error: NodeJS.ErrnoException, duplex) => {
      const socket = duplex as Socket
      // A request answered before its body was read (a 404, a redirect) keeps the connection
      // while Node discards the rest: a client that hangs up in it ends that body, not a new
      // request, and was answered already.
      if (!this.#inflight.has(socket) && this.#latest.get(socket)?.complete === false) {
        socket.destroy(error)
        return
      }
      // A reply only where no response has begun on the connection, as Node's default does, and
      // only to the request answered next: one the parser refused behind requests still owed an
      // answer (pipelined) would have its 400 read as the answer to the first of them, which may
      // have reached the upstream, and be taken for a refusal of it.
      const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
      const latest = this.#latest.get(socket)
      const isAnsweredNext =
        !this.#inflight.has(socket) || (latest?.complete === false && response?.req === latest)
      if (socket.writable && !response?.headersSent && isAnsweredNext) {
        const { reason, status } = PARSE_FAILURES[error.code ?? ''] ?? UNPARSABLE
        // Read before the reply: a write to a client already gone closes the handle, and with
        // it the peer's address, which a socket reads only on first use.
        const remoteAddress = socket.remoteAddress
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`)
        // A request the handler has is logged by it; a socket error (a reset, a timeout on an
        // idle connection) is no request: only what the parser refused, or timed out, is.
        const isOwnRequest = !this.#inflight.has(socket) && isRequestFailure(error.code)
        if (isOwnRequest) {
          handler.refused?.({
            reason,
            method: undefined,
            url: undefined,
            headers: {},
            remoteAddress,
          })
        }
      }
      socket.destroy(error)
    })
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket)
      // Each request in the handler may watch its connection close (a client gone): 16 pipelined
      // ones are no leak, and any client could otherwise have Node warn of one on stderr.
      socket.setMaxListeners(socket.getMaxListeners() + MAX_HANDLED_PER_CONNECTION)
      socket.once('close', () => {
        this.#sockets.delete(socket)
        this.#inflight.delete(socket)
        this.#waiting.delete(socket)
      })
    })
    this.#options = options
  }

  #options: HttpServerOptions
  #closing = false

  /**
   * Bounds how long the body of a request answered before it was read in full keeps arriving:
   * Node reads it to the end to keep the connection, and a client that trickled a byte a minute
   * held the connection for as long as it liked.
   */
  #lingerFor(req: IncomingMessage): void {
    if (req.complete || req.socket.destroyed) return
    const lingeringMs = this.#options.lingeringMs ?? DEFAULT_LINGERING_MS
    const timer = setTimeout(() => {
      if (!req.complete) req.socket.destroy()
    }, lingeringMs)
    timer.unref()
    const stop = () => clearTimeout(timer)
    req.once('end', stop)
    req.once('close', stop)
  }

  /** Hands the next waiting request of a connection on; reads it again once none waits. */
  #handOnWaiting(socket: Socket): void {
    const waiting = this.#waiting.get(socket)
    if (waiting === undefined) return
    // An answer closed the connection: the rest could never be answered, so none is started.
    if (socket.destroyed || !socket.writable) {
      this.#waiting.delete(socket)
      return
    }
    const start = waiting.shift()!
    if (waiting.length === 0) {
      this.#waiting.delete(socket)
      resumeReading(socket)
    }
    start()
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.#options.port, this.#options.host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    return this.server.address() as AddressInfo
  }

  get address(): AddressInfo | undefined {
    const address = this.server.address()
    return address && typeof address === 'object' ? address : undefined
  }

  get inflightRequests(): number {
    let total = 0
    for (const responses of this.#inflight.values()) total += responses.size
    return total
  }

  /**
   * Stops accepting, closes idle connections, waits for in-flight requests up to `deadlineMs`.
   * Past it, `beforeCut` may answer what can still be answered (requests that never left a
   * queue), and its replies are written before what is left is cut.
   */
  async close(deadlineMs: number, beforeCut?: () => void): Promise<void> {
    this.#closing = true
    // A request in flight whose answer has not begun is told the connection ends with it (as one
    // that arrives from now on is): its socket closes once it is answered, and a client that
    // believed it kept alive would send its next request into that close.
    for (const responses of this.#inflight.values()) {
      for (const res of responses) if (!res.headersSent) res.setHeader('connection', 'close')
    }
    let isClosed = false
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        isClosed = true
        resolve()
      }),
    )
    for (const socket of this.#sockets) if (!this.#inflight.has(socket)) socket.end()
    // Node fires a longer timer after 1 ms, which would cut every request at once.
    const waitMs = Math.min(deadlineMs, MAX_TIMER_MS)
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref())
    await Promise.race([closed, deadline])
    if (!isClosed && beforeCut !== undefined) {
      beforeCut()
      // Its replies are written on the microtasks it starts: all have run by the next turn.
      await new Promise((resolve) => setImmediate(resolve))
    }
    for (const socket of this.#sockets) socket.destroy()
    await closed
  }
}
