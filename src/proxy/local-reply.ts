import type { ServerResponse } from 'node:http'
import { ERROR_CATALOGUE, type ErrorCode, statusForCode } from './errors.ts'

export interface LocalReplyOptions {
  readonly requestId: string
  readonly message?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Close the client connection after replying, e.g. when an unread request body remains. */
  readonly closeConnection?: boolean | undefined
}

/**
 * A response Aya writes itself: `{"error":{"code","message","requestId"}}` with the code's status.
 * When the response has already started, the connection is cut instead, so a failure never looks
 * like a clean, complete response.
 */
export function sendLocalReply(
  res: ServerResponse,
  code: ErrorCode,
  options: LocalReplyOptions,
): number {
  const status = statusForCode(code)
  if (res.headersSent) {
    res.destroy()
    return status
  }
  const body = JSON.stringify({
    error: {
      code,
      message: options.message ?? ERROR_CATALOGUE[code].message,
      requestId: options.requestId,
    },
  })
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': options.requestId,
    'x-aya-error-code': code,
    ...options.headers,
  }
  if (options.closeConnection) headers.connection = 'close'
  if (res.destroyed) return status
  res.writeHead(status, headers)
  res.end(body)
  return status
}
