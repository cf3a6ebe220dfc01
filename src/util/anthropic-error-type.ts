/**
 * The error `type` Anthropic's API gives a status, which its SDKs map to exception classes: one
 * table for Aya's own replies and for the simulator's Messages API.
 */
export function anthropicType(status: number): string {
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
