/**
 * The one error catalogue. Codes are stable once released: scripts and dashboards match on them.
 * Each code maps to exactly one HTTP status here and nowhere else.
 */
export const ERROR_CATALOGUE = {
  LB_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  LB_ERR_NO_ROUTE: { status: 404, message: 'no route matches this request' },
  LB_ERR_UNKNOWN_MODEL: { status: 404, message: 'the requested model is not configured' },
  LB_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'the path does not serve this method' },
  LB_ERR_REQUEST_TIMEOUT: {
    status: 408,
    message: 'the request body did not arrive in time',
    closesConnection: true,
  },
  LB_ERR_BODY_TOO_LARGE: {
    status: 413,
    message: 'request body exceeds the limit',
    closesConnection: true,
  },
  LB_ERR_EXPECTATION_FAILED: {
    status: 417,
    message: 'the request asks for an expectation other than 100-continue',
  },
  LB_ERR_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  LB_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'the request head exceeds the limit',
    closesConnection: true,
  },
  LB_ERR_CLIENT_ABORTED: { status: 499, message: 'client closed the request' },
  LB_ERR_INTERNAL: { status: 500, message: 'internal error' },
  LB_ERR_UNSUPPORTED: { status: 501, message: 'the request uses a feature Aya does not support' },
  LB_ERR_CONNECT_FAILED: { status: 502, message: 'could not connect to the upstream' },
  LB_ERR_CONNECT_TIMEOUT: { status: 502, message: 'timed out connecting to the upstream' },
  LB_ERR_UPSTREAM_TLS: { status: 502, message: 'the TLS handshake with the upstream failed' },
  LB_ERR_UPSTREAM_RESET: { status: 502, message: 'the upstream closed the connection' },
  LB_ERR_UPSTREAM_PROTOCOL: { status: 502, message: 'the upstream sent an invalid response' },
  LB_ERR_NO_HEALTHY_UPSTREAM: { status: 503, message: 'no healthy endpoint is available' },
  LB_ERR_OVERLOADED: { status: 503, message: 'the upstream is saturated' },
  LB_ERR_QUEUE_FULL: { status: 503, message: 'the admission queue is full' },
  LB_ERR_DEADLINE: { status: 503, message: 'the request could not be started before its deadline' },
  LB_ERR_SHED: {
    status: 503,
    message:
      'the request was shed before it started: low-priority work under saturation, or Aya is shutting down',
  },
  LB_ERR_FIRST_BYTE_TIMEOUT: { status: 504, message: 'the upstream did not answer in time' },
  LB_ERR_IDLE_TIMEOUT: { status: 504, message: 'the upstream stopped sending' },
  // In band: the upstream's 200 and part of its stream were already sent when an error event came
  // in it, so the status is the one the client got. Logged and counted, never a local reply.
  LB_ERR_UPSTREAM_STREAM_ERROR: {
    status: 200,
    message: 'the upstream reported an error inside its stream',
  },
} as const satisfies Record<
  string,
  {
    status: number
    message: string
    /** The reply leaves part of the request body unread: the connection cannot carry another. */
    closesConnection?: true
  }
>

export type ErrorCode = keyof typeof ERROR_CATALOGUE
export type ErrorSource = 'upstream' | 'downstream' | 'internal'

export interface ProxyErrorInit {
  readonly source: ErrorSource
  readonly retryable?: boolean
  readonly sentUpstream?: boolean
  readonly message?: string
  readonly cause?: unknown
}

/** Every failure inside Aya is a ProxyError: it says where it came from and whether to retry. */
export class ProxyError extends Error {
  readonly code: ErrorCode
  readonly source: ErrorSource
  readonly retryable: boolean
  readonly sentUpstream: boolean

  constructor(code: ErrorCode, init: ProxyErrorInit) {
    super(init.message ?? ERROR_CATALOGUE[code].message, { cause: init.cause })
    this.name = 'ProxyError'
    this.code = code
    this.source = init.source
    this.retryable = init.retryable ?? false
    this.sentUpstream = init.sentUpstream ?? false
  }

  get status(): number {
    return statusForCode(this.code)
  }
}

export function statusForCode(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].status
}

/** Whether a local reply with this code closes the client connection (see the catalogue). */
export function closesConnection(code: ErrorCode): boolean {
  const entry = ERROR_CATALOGUE[code]
  return 'closesConnection' in entry && entry.closesConnection
}

export function isProxyError(value: unknown): value is ProxyError {
  return value instanceof ProxyError
}
