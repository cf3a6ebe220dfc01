import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform } from 'node:stream'
import type { Clock } from '../util/clock.ts'
import { createBodyStallWatch } from './body-stall-watch.ts'
import { ProxyError } from './errors.ts'

export interface BodyLimits {
  /**
   * Past this many bytes the body fails with LB_ERR_BODY_TOO_LARGE. Left out for a body with a
   * Content-Length, which Node's parser already holds to its declared length.
   */
  readonly maxBodyBytes?: number | undefined
  /**
   * The longest the client may pause its body while nothing of it waits to go upstream: past it
   * the body fails with LB_ERR_REQUEST_TIMEOUT (408), as nginx's `client_body_timeout` does.
   */
  readonly idleMs: number
  /** Told the size of each piece as it passes (the access log's `bytesIn`). */
  readonly onBytes?: ((bytes: number) => void) | undefined
}

/**
 * Passes a streamed request body through while counting it, failing it past the size limit or
 * when the client stops sending. A client that sends its headers and then stops would otherwise
 * hold an upstream connection for as long as it liked, and the requests queued for that pool
 * behind it would wait with it. Silence while the upstream is not taking what Aya holds is the
 * upstream's, not the client's, and does not count.
 *
 * Once the response is over, whatever of the body nobody read (an error reply before it went
 * upstream, an upstream that answered without reading it all) is discarded as it comes, as Node
 * does for a body no handler reads, so the connection can carry the next request.
 */
export function limitBody(
  body: IncomingMessage,
  res: ServerResponse,
  limits: BodyLimits,
  deps: { readonly clock: Clock },
): Transform {
  const { maxBodyBytes, idleMs, onBytes } = limits
  let seen = 0
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      stall.noteChunk()
      onBytes?.(chunk.length)
      if (maxBodyBytes !== undefined && seen > maxBodyBytes) {
        callback(new ProxyError('LB_ERR_BODY_TOO_LARGE', { source: 'downstream' }))
        return
      }
      callback(null, chunk)
    },
  })
  const stall = createBodyStallWatch(
    {
      idleMs,
      isHeld: () => body.readableLength + limited.writableLength + limited.readableLength > 0,
    },
    (reason) => {
      if (limited.destroyed || limited.writableEnded) return
      limited.destroy(
        new ProxyError('LB_ERR_REQUEST_TIMEOUT', { source: 'downstream', message: reason }),
      )
    },
    deps,
  )
  // Those reading it (undici, a mirror) see its errors; one that comes once they have stopped
  // listening must not throw.
  limited.on('error', () => {})
  body.on('error', (error) => limited.destroy(error))
  body.once('end', stall.stop)
  body.once('close', stall.stop)
  limited.once('close', stall.stop)
  const discardRest = () => {
    if (body.complete) return
    body.unpipe(limited)
    limited.destroy(
      new ProxyError('LB_ERR_CLIENT_ABORTED', {
        source: 'downstream',
        message: 'the response ended before the request body',
      }),
    )
    body.resume()
  }
  res.once('finish', discardRest)
  res.once('close', discardRest)
  return body.pipe(limited)
}
