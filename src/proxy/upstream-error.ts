import { type ErrorCode, ProxyError } from './errors.ts'

/**
 * Maps an undici or socket failure to Aya's catalogue. `responseStarted` says whether the
 * upstream's response headers had arrived; `bodySent` whether any request bytes left Aya.
 */
export function toUpstreamError(error: unknown, responseStarted: boolean): ProxyError {
  if (error instanceof ProxyError) return error
  const code = (error as { code?: string } | null)?.code
  const cause = (error as { cause?: { code?: string } } | null)?.cause?.code
  let mapped: ErrorCode
  let retryable = false
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      mapped = 'LB_ERR_CONNECT_TIMEOUT'
      retryable = true
      break
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
      mapped = 'LB_ERR_CONNECT_FAILED'
      retryable = true
      break
    case 'UND_ERR_HEADERS_TIMEOUT':
      mapped = 'LB_ERR_FIRST_BYTE_TIMEOUT'
      break
    case 'UND_ERR_BODY_TIMEOUT':
      mapped = 'LB_ERR_IDLE_TIMEOUT'
      break
    case 'UND_ERR_INFO':
    case 'HPE_INVALID_CONSTANT':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      mapped = 'LB_ERR_UPSTREAM_PROTOCOL'
      break
    default:
      // undici's parser errors carry no code: a garbage status line or header is a protocol
      // error, not a reset.
      if ((error as { name?: string } | null)?.name === 'HTTPParserError') {
        mapped = 'LB_ERR_UPSTREAM_PROTOCOL'
      } else {
        mapped = cause === 'ECONNREFUSED' ? 'LB_ERR_CONNECT_FAILED' : 'LB_ERR_UPSTREAM_RESET'
      }
  }
  return new ProxyError(mapped, {
    source: 'upstream',
    retryable: retryable && !responseStarted,
    sentUpstream: mapped !== 'LB_ERR_CONNECT_FAILED' && mapped !== 'LB_ERR_CONNECT_TIMEOUT',
    cause: error,
  })
}
