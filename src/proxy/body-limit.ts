import type { Readable } from 'node:stream'
import { Transform } from 'node:stream'
import { ProxyError } from './errors.ts'

/**
 * Passes a body through while counting it, failing with LB_ERR_BODY_TOO_LARGE past the limit.
 * Only needed for bodies without Content-Length: Node's parser already holds a declared length.
 */
export function limitBody(body: Readable, maxBodyBytes: number): Readable {
  let seen = 0
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      if (seen > maxBodyBytes) {
        callback(new ProxyError('LB_ERR_BODY_TOO_LARGE', { source: 'downstream' }))
        return
      }
      callback(null, chunk)
    },
  })
  body.on('error', (error) => limited.destroy(error))
  return body.pipe(limited)
}
