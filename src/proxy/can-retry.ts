import type { ProxyError } from './errors.ts'

/** Where a request stands after a failed attempt. */
export interface AttemptHistory {
  /** As the client sent it (Node's parser gives it in upper case). */
  readonly method: string
  /** Attempts made so far, the failed one included. */
  readonly attempts: number
  /**
   * Its body can go out again once sent: it has none, or Aya holds it whole. A body still
   * streaming from the client is read by the attempt that sends it, so only an attempt that was
   * never sent leaves it whole for the next.
   */
  readonly resendable: boolean
  /** It was already sent again once after a connection closed under it. */
  readonly resent: boolean
  /** Part of a response has gone to the client. */
  readonly responding: boolean
}

/**
 * The methods RFC 9110 §9.2.2 defines as idempotent: the ones a proxy may send again after a
 * connection closed under them (RFC 9112 §9.3.1.1), as nginx's `proxy_next_upstream` does. POST
 * and PATCH never are, not even with an `Idempotency-Key` (Go's client replays those): Aya cannot
 * know whether the upstream honours the key, and an LLM generation sent twice runs twice.
 */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PUT',
  'DELETE',
])

/** A request's attempts, at most: connect failures and one resend together. */
const MAX_ATTEMPTS = 3

/**
 * Whether a failed attempt may be followed by another. Nothing sent (a connect failure): yes,
 * while attempts are left, whatever the body (undici reads none of it before a connection takes
 * the request). Sent, but the connection closed before any byte of an answer: once, for an
 * idempotent method whose body can go out again, since the upstream may have acted on it. A
 * timeout, or a failure after the answer began, never: the upstream may still be at work on it.
 */
export function canRetry(error: ProxyError, history: AttemptHistory): boolean {
  if (!error.retryable || history.responding || history.attempts >= MAX_ATTEMPTS) return false
  if (!error.sentUpstream) return true
  return history.resendable && !history.resent && IDEMPOTENT_METHODS.has(history.method)
}
