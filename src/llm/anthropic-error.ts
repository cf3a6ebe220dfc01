import { ERROR_CATALOGUE, type ErrorCode, statusForCode } from '../proxy/errors.ts'
import { anthropicType } from '../util/anthropic-error-type.ts'

/**
 * Anthropic's error body: `{"type":"error","error":{"type","message"},"request_id"}`, with the
 * error types its SDK maps to exception classes. `request_id` is Aya's request id, the one in
 * `x-request-id`; Aya's own code travels in the `x-aya-error-code` header.
 */
export function anthropicErrorBody(
  code: ErrorCode,
  message: string | undefined,
  requestId: string,
): string {
  return JSON.stringify({
    type: 'error',
    error: {
      type: anthropicType(statusForCode(code)),
      message: message ?? ERROR_CATALOGUE[code].message,
    },
    request_id: requestId,
  })
}
