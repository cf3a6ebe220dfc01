import type { ServerResponse } from 'node:http'
import { cutResponse } from './cut-response.ts'
import { closesConnection, ERROR_CATALOGUE, type ErrorCode, statusForCode } from './errors.ts'

/**
 * Renders an error body in a route's API shape (Aya's own JSON, or an LLM API's, which carries
 * its own details such as OpenAI's `param` in the format itself).
 */
export type ErrorBodyFormat = (
  code: ErrorCode,
  detail: { readonly message: string | undefined; readonly requestId: string },
) => string

export const ayaErrorBody: ErrorBodyFormat = (code, detail) =>
  JSON.stringify({
    error: {
      code,
      message: detail.message ?? ERROR_CATALOGUE[code].message,
      requestId: detail.requestId,
    },
  })

export interface LocalReplyOptions {
  readonly requestId: string
  readonly message?: string | undefined
  readonly format?: ErrorBodyFormat | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** What a local reply sent: its status, and the body bytes that went to the client. */
export interface LocalReplyResult {
  readonly status: number
  readonly bodyBytes: number
}

/**
 * A response Aya writes itself, in the route's error shape (Aya's by default), with the code's status.
 * When the response has already started, the connection is cut instead, so a failure never looks
 * like a clean, complete response.
 */
export function sendLocalReply(
  res: ServerResponse,
  code: ErrorCode,
  options: LocalReplyOptions,
): LocalReplyResult {
  const status = statusForCode(code)
  if (res.headersSent) {
    cutResponse(res)
    return { status, bodyBytes: 0 }
  }
  const format = options.format ?? ayaErrorBody
  const body = format(code, { message: options.message, requestId: options.requestId })
  const bodyBytes = Buffer.byteLength(body)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': bodyBytes,
    'x-request-id': options.requestId,
    'x-aya-error-code': code,
    ...options.headers,
  }
  if (closesConnection(code)) headers.connection = 'close'
  if (res.destroyed) return { status, bodyBytes: 0 }
  res.writeHead(status, headers)
  res.end(body)
  // A reply to HEAD carries the headers only.
  return { status, bodyBytes: res.req.method === 'HEAD' ? 0 : bodyBytes }
}
