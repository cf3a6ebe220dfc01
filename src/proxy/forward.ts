import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Clock, Timer } from '../util/clock.ts'
import { contentCodings } from './decode-content-encoding.ts'
import { ProxyError } from './errors.ts'
import { responseHasBody } from './response-has-body.ts'
import { toUpstreamError } from './upstream-error.ts'

export interface ForwardRequest {
  readonly path: string
  readonly method: string
  readonly headers: Record<string, string | string[]>
  readonly body: Readable | Buffer | null
  readonly firstByteTimeoutMs: number
  /**
   * How long the request may wait for a connection, a pooled one to come free or a new one to
   * open: `connectMs` plus `firstByteMs`, so that a connect that hangs ends as its own connect
   * timeout (retried elsewhere, nothing sent) before the wait is given up on.
   */
  readonly connectionWaitMs: number
  readonly idleTimeoutMs: number
}

/**
 * Where an upstream response goes. `start` returns false to refuse the response (the request is
 * then aborted); `data` returns false when the client is not keeping up, which pauses the upstream.
 */
export interface ResponseSink {
  start(status: number, headers: IncomingHttpHeaders): boolean
  data(chunk: Buffer): boolean
  /** Called once the sink can take more after `data` returned false. */
  onDrain(resume: () => void): void
  end(trailers: IncomingHttpHeaders): void
}

export interface ForwardResult {
  readonly error: ProxyError | undefined
  /**
   * A connection took the request: some of it may have reached the upstream. False for one given
   * up on before that, whoever gave up (the client, the body, the wait for a connection).
   */
  readonly sentUpstream: boolean
}

export interface ForwardHandle {
  readonly done: Promise<ForwardResult>
  abort(reason: ProxyError): void
}

/**
 * Streams one request to an upstream through an undici dispatcher and the response into a sink,
 * with back-pressure both ways and no buffering: each chunk is handed on as it arrives.
 */
export function forward(
  dispatcher: Dispatcher,
  request: ForwardRequest,
  sink: ResponseSink,
  deps: { readonly clock: Clock },
): ForwardHandle {
  let controller: Dispatcher.DispatchController | undefined
  let isAnswering = false
  let pendingAbort: ProxyError | undefined
  let settled = false
  let sentUpstream = false
  let resolve!: (result: ForwardResult) => void
  const done = new Promise<ForwardResult>((r) => {
    resolve = r
  })
  const settle = (error: ProxyError | undefined) => {
    if (settled) return
    settled = true
    queueTimer?.clear()
    resolve({ error, sentUpstream })
  }
  // A request waits here for a connection while the pool's are all busy. undici times the answer
  // only from when the request is written, and cannot abort it before: so the wait is timed here,
  // and a request given up on ends now and is aborted, unsent, when its turn comes.
  const giveUp = (reason: ProxyError) => {
    pendingAbort = reason
    settle(reason)
  }
  let queueTimer: Timer | undefined = deps.clock.setTimer(request.connectionWaitMs, () =>
    giveUp(
      new ProxyError('LB_ERR_FIRST_BYTE_TIMEOUT', {
        source: 'upstream',
        message: 'no connection to the upstream came free within connectMs + firstByteMs',
      }),
    ),
  )

  // undici notes a body that fails while the request waits, and reports it only once a connection
  // comes free: the body guard's 408 or 413, or a client gone, ends the wait now instead.
  if (request.body !== null && !Buffer.isBuffer(request.body)) {
    request.body.once('error', (error) => {
      if (controller === undefined)
        giveUp(
          abortReason(error) ?? new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' }),
        )
    })
  }

  dispatcher.dispatch(
    {
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers,
      body: request.body,
      headersTimeout: request.firstByteTimeoutMs,
      bodyTimeout: request.idleTimeoutMs,
      // Never replay a request on another pooled socket behind our back: retries are Aya's call.
      idempotent: false,
      blocking: true,
    },
    {
      onRequestStart(ctl) {
        controller = ctl
        queueTimer?.clear()
        queueTimer = undefined
        if (pendingAbort) ctl.abort(pendingAbort)
        else sentUpstream = true
      },
      // undici calls it at the first byte of a response, before the head is whole: a connection
      // that closes after it did not close unanswered (see toUpstreamError). Deprecated in the
      // types with the old handler API, but undici's own fetch still relies on it.
      onResponseStarted() {
        isAnswering = true
      },
      onResponseStart(ctl, statusCode, headers) {
        // Should undici ever stop calling `onResponseStarted`, a whole head still means answered.
        isAnswering = true
        // Only 100 to 599 are status codes (RFC 9110 §15): a 600 passed on would reach the client
        // as if it meant something, and a 099 taken for informational would wait for a real one.
        if (statusCode < 100 || statusCode > 599) {
          ctl.abort(
            new ProxyError('LB_ERR_UPSTREAM_PROTOCOL', {
              source: 'upstream',
              sentUpstream: true,
              message: `the upstream answered with the invalid status ${statusCode}`,
            }),
          )
          return
        }
        if (statusCode < 200) return
        // undici undoes chunked framing only, and Transfer-Encoding goes as hop-by-hop: a body in
        // another transfer coding (`gzip, chunked`) would reach the client still coded, with
        // nothing saying so, as a clean 200. No upstream may send one unasked (RFC 9112 §6.1), and
        // Aya never asks (it sends no TE), so it is refused as the request side refuses one.
        if (responseHasBody(request.method, statusCode) && hasOtherTransferCoding(headers)) {
          ctl.abort(
            new ProxyError('LB_ERR_UPSTREAM_PROTOCOL', {
              source: 'upstream',
              sentUpstream: true,
              message: `the upstream answered in the transfer coding ${String(headers['transfer-encoding'])}`,
            }),
          )
          return
        }
        // A 204 or 304 ends with its head (RFC 9112 §6.3). undici still holds a 304 that states
        // its representation's Content-Length, as RFC 9110 §8.6 allows, or a 204 that wrongly
        // states one, to a body of that length, and fails it as truncated. So it ends here, and
        // the failure that follows only closes the upstream connection.
        const isBodiless = statusCode === 204 || statusCode === 304
        if (statusCode === 204) {
          delete headers['content-length']
          delete headers['transfer-encoding']
        }
        if (!sink.start(statusCode, headers)) {
          ctl.abort(new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' }))
        } else if (isBodiless) {
          sink.end({})
          settle(undefined)
        }
      },
      onResponseData(ctl, chunk) {
        if (settled) return
        if (!sink.data(chunk)) {
          ctl.pause()
          sink.onDrain(() => ctl.resume())
        }
      },
      onResponseEnd(_ctl, trailers) {
        if (settled) return
        sink.end(trailers)
        settle(undefined)
      },
      onResponseError(_ctl, error) {
        const stage = !sentUpstream ? 'unsent' : isAnswering ? 'answering' : 'sent'
        settle(abortReason(error) ?? toUpstreamError(error, stage))
      },
    },
  )

  return {
    done,
    abort(reason) {
      if (settled) return
      if (controller) controller.abort(reason)
      else giveUp(reason)
    },
  }
}

/** A transfer coding other than chunked (or the obsolete `identity`, which is none). */
function hasOtherTransferCoding(headers: IncomingHttpHeaders): boolean {
  const value = headers['transfer-encoding']
  if (value === undefined) return false
  return contentCodings(String(value)).some((coding) => coding !== 'chunked')
}

/** Errors Aya raised itself (client abort, body limit) come back through undici unchanged. */
function abortReason(error: unknown): ProxyError | undefined {
  if (error instanceof ProxyError) return error
  const cause = (error as { cause?: unknown } | null)?.cause
  return cause instanceof ProxyError ? cause : undefined
}
