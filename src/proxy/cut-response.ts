import type { ServerResponse } from 'node:http'
import { responseHasBody } from './response-has-body.ts'

/**
 * Cuts a response that has begun, so the client can tell it failed. A `Content-Length` response
 * then ends short and a chunked one without its last chunk; but one framed by the connection's
 * close (the client spoke HTTP/1.0, and the body had no known length) would look complete at a
 * close, so its connection is reset instead.
 */
export function cutResponse(res: ServerResponse): void {
  const isCloseDelimited =
    !res.chunkedEncoding &&
    res.getHeader('content-length') === undefined &&
    responseHasBody(res.req.method, res.statusCode)
  const socket = res.socket
  if (isCloseDelimited && socket !== null && !socket.destroyed) {
    try {
      socket.resetAndDestroy()
    } catch {
      // Only a TCP connection has a reset: a TLS one is destroyed as any other, unsent
      // close_notify and all, which a TLS client reads as a truncation.
    }
  }
  res.destroy()
}
