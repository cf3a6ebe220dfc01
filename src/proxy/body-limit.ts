import type { Readable } from 'node:stream'
import { Transform } from 'node:stream'
import type { Clock, Timer } from '../util/clock.ts'
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
 */
export function limitBody(
  body: Readable,
  limits: BodyLimits,
  deps: { readonly clock: Clock },
): Readable {
  const { maxBodyBytes, idleMs, onBytes } = limits
  let seen = 0
  let lastChunkAtMs = deps.clock.now()
  let timer: Timer | undefined
  const stopTimer = () => {
    timer?.clear()
    timer = undefined
  }
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      lastChunkAtMs = deps.clock.now()
      onBytes?.(chunk.length)
      if (maxBodyBytes !== undefined && seen > maxBodyBytes) {
        callback(new ProxyError('LB_ERR_BODY_TOO_LARGE', { source: 'downstream' }))
        return
      }
      callback(null, chunk)
    },
  })
  // One timer, re-armed when it fires early: chunks only note their time.
  const check = () => {
    timer = undefined
    if (limited.destroyed || limited.writableEnded) return
    const nowMs = deps.clock.now()
    const held = body.readableLength + limited.writableLength + limited.readableLength
    if (held > 0) lastChunkAtMs = nowMs
    else if (nowMs - lastChunkAtMs >= idleMs) {
      limited.destroy(
        new ProxyError('LB_ERR_REQUEST_TIMEOUT', {
          source: 'downstream',
          message: `the request body stalled for ${idleMs} ms`,
        }),
      )
      return
    }
    timer = deps.clock.setTimer(lastChunkAtMs + idleMs - nowMs, check)
  }
  timer = deps.clock.setTimer(idleMs, check)
  body.on('error', (error) => limited.destroy(error))
  body.once('end', stopTimer)
  body.once('close', stopTimer)
  limited.once('close', stopTimer)
  return body.pipe(limited)
}
