import type { IncomingMessage } from 'node:http'
import { ProxyError } from './errors.ts'

/**
 * Reads a whole request body into memory, refusing it past `maxBodyBytes`. Used only where the
 * body must be understood (LLM routes); plain routes stream bodies through untouched.
 */
export function readBodyBounded(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBodyBytes) {
        cleanup()
        reject(new ProxyError('LB_ERR_BODY_TOO_LARGE', { source: 'downstream' }))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (error: Error) => {
      cleanup()
      reject(new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream', cause: error }))
    }
    const onClose = () => {
      if (!req.complete) onError(new Error('client closed the request before its body ended'))
    }
    const cleanup = () => {
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
