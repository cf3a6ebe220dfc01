import type { IncomingMessage } from 'node:http'
import type { Clock } from '../util/clock.ts'
import { createBodyStallWatch } from './body-stall-watch.ts'
import { ProxyError } from './errors.ts'

interface BodyReadLimits {
  readonly maxBodyBytes: number
  /** Longest silence between two pieces of the body. */
  readonly idleMs: number
  /** Longest the whole body may take, however steadily it trickles in. */
  readonly deadlineMs: number
  /** Told the size of each piece as it is read, refused or not (the access log's `bytesIn`). */
  readonly onBytes?: ((bytes: number) => void) | undefined
}

/**
 * Reads a whole request body into memory, refusing it past `maxBodyBytes`, and timing it out
 * (408) when it stalls or takes too long: a client that sends its headers and then trickles or
 * stops would otherwise hold its buffer and its socket for as long as it liked. Used only where
 * the body must be understood (LLM routes); plain routes stream bodies through untouched.
 */
export function readBodyBounded(
  req: IncomingMessage,
  limits: BodyReadLimits,
  deps: { readonly clock: Clock },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const fail = (error: ProxyError) => {
      cleanup()
      reject(error)
    }
    const stall = createBodyStallWatch(
      limits,
      (reason) =>
        fail(new ProxyError('LB_ERR_REQUEST_TIMEOUT', { source: 'downstream', message: reason })),
      deps,
    )
    const onData = (chunk: Buffer) => {
      size += chunk.length
      limits.onBytes?.(chunk.length)
      if (size > limits.maxBodyBytes) {
        fail(new ProxyError('LB_ERR_BODY_TOO_LARGE', { source: 'downstream' }))
        return
      }
      chunks.push(chunk)
      stall.noteChunk()
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (error: Error) => {
      fail(new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream', cause: error }))
    }
    const onClose = () => {
      if (!req.complete) onError(new Error('client closed the request before its body ended'))
    }
    const cleanup = () => {
      stall.stop()
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}
