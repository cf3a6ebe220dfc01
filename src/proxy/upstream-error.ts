import { ERROR_CATALOGUE, type ErrorCode, ProxyError } from './errors.ts'

/**
 * How far an exchange with an upstream had got when it failed: no connection yet (`unsent`), the
 * request put on a connection with no byte of an answer back (`sent`), or the answer begun
 * (`answering`).
 */
export type ExchangeStage = 'unsent' | 'sent' | 'answering'

/**
 * Maps an undici or socket failure to Aya's catalogue. undici puts a request on a connection only
 * once it is open (TCP and TLS), so a failure before that is the connection's, whatever its cause
 * (refused, timed out, a certificate not trusted, a handshake reset): nothing reached the upstream,
 * and another endpoint may be tried. A connection that closed after the request went out but
 * before any byte of an answer is retryable too, though sent: the upstream may have read the
 * request, so only an idempotent one may go again (see canRetry).
 */
export function toUpstreamError(error: unknown, stage: ExchangeStage): ProxyError {
  if (error instanceof ProxyError) return error
  const code = (error as { code?: unknown } | null)?.code
  if (stage === 'unsent') {
    return new ProxyError(connectFailureCode(code), {
      source: 'upstream',
      retryable: true,
      sentUpstream: false,
      cause: error,
    })
  }
  let mapped: ErrorCode
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      mapped = 'LB_ERR_FIRST_BYTE_TIMEOUT'
      break
    case 'UND_ERR_BODY_TIMEOUT':
      mapped = 'LB_ERR_IDLE_TIMEOUT'
      break
    case 'UND_ERR_INFO':
    case 'HPE_INVALID_CONSTANT':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    // A head over undici's header size limit: the upstream answered, too much to be read.
    case 'UND_ERR_HEADERS_OVERFLOW':
    // undici's own assertions fail on answers it has no path for (a 101 without an Upgrade
    // header): the upstream answered something undici cannot take, which is no reset.
    case 'ERR_ASSERTION':
      mapped = 'LB_ERR_UPSTREAM_PROTOCOL'
      break
    case 'UND_ERR_SOCKET':
      mapped = REFUSED_ANSWER.has((error as { message?: unknown }).message)
        ? 'LB_ERR_UPSTREAM_PROTOCOL'
        : 'LB_ERR_UPSTREAM_RESET'
      break
    default:
      // undici's parser errors carry no code: a garbage status line or header is a protocol
      // error, not a reset.
      mapped =
        (error as { name?: string } | null)?.name === 'HTTPParserError'
          ? 'LB_ERR_UPSTREAM_PROTOCOL'
          : 'LB_ERR_UPSTREAM_RESET'
  }
  return new ProxyError(mapped, {
    source: 'upstream',
    // A close before any byte of an answer is most often the race of a pooled keep-alive
    // connection the upstream closed as the request went out (its idle timeout): nothing of an
    // answer was lost. Once the answer began, or on a timeout, the upstream was at work on it.
    retryable:
      mapped === 'LB_ERR_UPSTREAM_RESET' &&
      stage === 'sent' &&
      typeof code === 'string' &&
      CONNECTION_CLOSED.has(code),
    sentUpstream: true,
    cause: error,
  })
}

/**
 * The codes of a connection closed under a request: undici's for a close it read (`other side
 * closed`), the socket's for a reset, or a write to a connection already reset.
 */
const CONNECTION_CLOSED: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

/**
 * The messages of the socket errors undici raises when it drops a connection over an answer it
 * will not take, not because the upstream closed it: a `100 Continue` (Aya sends no Expect) and a
 * `101` switch of protocols (Aya asks for none).
 */
const REFUSED_ANSWER: ReadonlySet<unknown> = new Set(['bad response', 'bad upgrade'])

/**
 * The codes of a failed TLS handshake: Node's (`ERR_TLS_CERT_ALTNAME_INVALID`), OpenSSL's
 * (`ERR_SSL_WRONG_VERSION_NUMBER` from a server that speaks no TLS, an alert from one that refused
 * the handshake), and certificate verification's (`DEPTH_ZERO_SELF_SIGNED_CERT`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`, `HOSTNAME_MISMATCH`, ...).
 */
const TLS_FAILURE =
  /^ERR_(?:TLS|SSL)_|CERT|CRL|^UNABLE_TO_|^(?:INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED|HOSTNAME_MISMATCH)$/

/** A failure before the request was sent: the connection's, by its cause. */
function connectFailureCode(code: unknown): ErrorCode {
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'LB_ERR_CONNECT_TIMEOUT'
  if (typeof code === 'string' && TLS_FAILURE.test(code)) return 'LB_ERR_UPSTREAM_TLS'
  return 'LB_ERR_CONNECT_FAILED'
}

/** The longest `errorDetail` kept: enough for a Node or OpenSSL message and its code. */
const MAX_DETAIL_CHARS = 200

/**
 * Why an upstream failed, for the access log, where the `LB_ERR_*` code says only what kind of
 * failure it was: its cause's code and message (`DEPTH_ZERO_SELF_SIGNED_CERT: self-signed
 * certificate`, `connect ECONNREFUSED 10.0.0.5:8080`), or the message Aya gave it (`the upstream
 * answered with the invalid status 600`). Undefined for an error not from the upstream (a
 * client's may quote its body) or with nothing to add. One line, at most MAX_DETAIL_CHARS.
 */
export function upstreamErrorDetail(error: ProxyError): string | undefined {
  if (error.source !== 'upstream') return undefined
  const detail =
    error.cause === undefined
      ? error.message === ERROR_CATALOGUE[error.code].message
        ? ''
        : error.message
      : causeDetail(error.cause)
  return detailLine(detail)
}

/**
 * Text for `errorDetail`: on one line, at most MAX_DETAIL_CHARS (cut with an ellipsis), or
 * undefined when nothing is left of it.
 */
export function detailLine(text: string): string | undefined {
  const line = text.replace(/\s+/g, ' ').trim()
  if (line === '') return undefined
  return line.length > MAX_DETAIL_CHARS ? `${line.slice(0, MAX_DETAIL_CHARS - 1)}…` : line
}

/** A cause's message, led by its code where the message does not name it. */
function causeDetail(cause: unknown): string {
  const failure = cause as { code?: unknown; message?: unknown; errors?: unknown } | null
  let message = typeof failure?.message === 'string' ? failure.message : ''
  // A connect to every address of a host fails as an AggregateError without a message.
  if (message === '' && Array.isArray(failure?.errors)) {
    const first = failure.errors[0] as { message?: unknown } | undefined
    if (typeof first?.message === 'string') message = first.message
  }
  const code = typeof failure?.code === 'string' ? failure.code : undefined
  if (code === undefined || message.includes(code)) return message
  return message === '' ? code : `${code}: ${message}`
}
