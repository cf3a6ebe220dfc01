import { ERROR_CATALOGUE, type ErrorCode, statusForCode } from '../proxy/errors.ts'

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

function anthropicType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 408:
      return 'invalid_request_error'
    case 401:
      return 'authentication_error'
    case 403:
      return 'permission_error'
    case 404:
      return 'not_found_error'
    case 413:
      return 'request_too_large'
    case 429:
      return 'rate_limit_error'
    case 503:
      return 'overloaded_error'
    // Anthropic's gateway timeout: its SDK types it `timeout_error` (GatewayTimeoutErrorObject).
    case 504:
      return 'timeout_error'
    default:
      return 'api_error'
  }
}
