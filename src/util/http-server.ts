import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MAX_TIMER_MS } from './clock.ts'

export interface HttpServerOptions {
  readonly host: string
  readonly port: number
  /** How long an idle keep-alive client connection is kept, ms. */
  readonly keepAliveTimeoutMs?: number
}

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
  #inflight = new Map<import('node:net').Socket, number>()

  constructor(handler: RequestHandler, options: HttpServerOptions) {
    const tracked =
      (handle: (req: IncomingMessage, res: ServerResponse) => void) =>
      (req: IncomingMessage, res: ServerResponse) => {
        const socket = req.socket
        this.#inflight.set(socket, (this.#inflight.get(socket) ?? 0) + 1)
        res.once('close', () => {
          const left = (this.#inflight.get(socket) ?? 1) - 1
          if (left <= 0) this.#inflight.delete(socket)
          else this.#inflight.set(socket, left)
          if (this.#closing && left <= 0) socket.end()
        })
        if (this.#closing) res.setHeader('connection', 'close')
        handle(req, res)
      }
    this.server = createServer(
      {
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
        // Streams (SSE, long uploads) may last far longer than any fixed request timeout.
        requestTimeout: 0,
        headersTimeout: 60_000,
        noDelay: true,
      },
      tracked(handler),
    )
    if (handler.checkContinue !== undefined) {
      this.server.on('checkContinue', tracked(handler.checkContinue))
    }
    // CONNECT asks for a tunnel, which an L7 reverse proxy does not open: say so, not just hang up.
    const notAllowed = `HTTP/1.1 405 Method Not Allowed\r\nallow: ${handler.allowedMethods ?? PROXY_METHODS}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`
    this.server.on('connect', (_req, socket) => {
      socket.end(notAllowed)
    })
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    this.#options = options
  }

  #options: HttpServerOptions
  #closing = false

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
    for (const count of this.#inflight.values()) total += count
    return total
  }

  /** Stops accepting, closes idle connections, waits for in-flight requests up to `deadlineMs`. */
  async close(deadlineMs: number): Promise<void> {
    this.#closing = true
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of this.#sockets) if (!this.#inflight.has(socket)) socket.end()
    // Node fires a longer timer after 1 ms, which would cut every request at once.
    const waitMs = Math.min(deadlineMs, MAX_TIMER_MS)
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref())
    await Promise.race([closed, deadline])
    for (const socket of this.#sockets) socket.destroy()
    await closed
  }
}
