import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { PickContext } from '../balancer/picker.ts'
import { type PacedPrefill, prefillEvidenceOf } from '../llm/prefill-pacer.ts'
import { createResponseTap, type TapResult } from '../llm/response-tap.ts'
import {
  type Endpoint,
  type Lease,
  type LeaseCost,
  NEUTRAL_OUTCOME,
  type Outcome,
} from '../upstream/endpoint.ts'
import type { Timer } from '../util/clock.ts'
import { cutResponse } from './cut-response.ts'
import { contentCodings } from './decode-content-encoding.ts'
import { ProxyError } from './errors.ts'
import { forward } from './forward.ts'
import { stripHopByHop } from './headers.ts'
import type { HttpProxyDeps } from './http-proxy-deps.ts'
import { isAnthropicApi } from './models-gateway.ts'
import { predictPrefillEnd } from './predicted-prefill-end.ts'
import type { RouteRuntime, UpstreamRuntime } from './proxy-runtime.ts'
import type { RequestContext } from './request-context.ts'
import { applyHeaderEdits } from './route-actions.ts'
import { detailLine, upstreamErrorDetail } from './upstream-error.ts'
import { whenClientGone } from './when-client-gone.ts'

interface DispatchOptions {
  readonly path: string
  readonly headers: Record<string, string | string[]>
  readonly body: Readable | Buffer | null
  readonly routeConfig: RouteRuntime['config']
  readonly setCookie: string | undefined
  readonly cost: LeaseCost | undefined
  /** The context the endpoint was picked with: told to the policy if the request never gets there. */
  readonly pick: PickContext
  /** The pacer may give the held prompt up for an idle engine (once per request: see its use). */
  readonly movable: boolean
  readonly deps: HttpProxyDeps
}

/**
 * What `dispatchTo` returns when the pacer gave the held prompt up for an idle engine: nothing
 * was sent, and the caller has the policy place it again.
 */
export const MOVED_TO_IDLE: unique symbol = Symbol('moved to an idle engine')

export async function dispatchTo(
  ctx: RequestContext,
  upstream: UpstreamRuntime,
  endpoint: Endpoint,
  options: DispatchOptions,
): Promise<ProxyError | typeof MOVED_TO_IDLE | undefined> {
  const { res } = ctx
  const { deps, routeConfig } = options
  const timeouts = {
    connectMs: routeConfig.timeouts?.connectMs ?? upstream.timeouts.connectMs,
    // A response that is not streamed starts only when the whole generation is done.
    firstByteMs:
      ctx.llm !== undefined && !ctx.llm.stream
        ? (routeConfig.timeouts?.completionMs ?? upstream.timeouts.completionMs)
        : (routeConfig.timeouts?.firstByteMs ?? upstream.timeouts.firstByteMs),
    idleMs: routeConfig.timeouts?.idleMs ?? upstream.timeouts.idleMs,
  }
  const llm = ctx.llm
  // Router-side accounting for LLM work: the prompt is pending prefill until the first token.
  const prefillAheadTokens = endpoint.countedPrefillTokens
  const lease: Lease = endpoint.begin(options.cost)
  // The policy may hold the prompt until the engine is about to finish the prefill it has.
  const prefillTokens = options.cost?.prefillTokens ?? llm?.promptTokens ?? 0
  const pacer = llm ? upstream.group.pacer() : undefined
  const paced = pacer?.enter(endpoint.id, prefillTokens, llm?.promptTokens)
  // The upstream's queue now, not the one of the config this request came under: a reload may
  // have added one since, which only the recheck timer would otherwise drain as this ends. (A
  // queue a reload replaced hands notices on to its successor itself.)
  const notifyAdmission = () =>
    (deps.runtime().upstreams.get(upstream.name) ?? upstream).admission?.notify()
  // Bound and counted: the admission queue may let the next request go.
  notifyAdmission()
  // The request no longer occupies the endpoint: its lease, its pacer slot, the queue's view.
  const release = (outcome: Outcome): void => {
    lease.end(outcome)
    paced?.done(false)
    notifyAdmission()
  }
  const held = paced ? await released(paced, res, options.movable) : 'released'
  if (held !== 'released') {
    release(NEUTRAL_OUTCOME)
    upstream.group.unsent(endpoint, options.pick)
    if (held === 'moved') return MOVED_TO_IDLE
    // Given up unsent by a shutdown: a 503 the client may retry elsewhere, not a cut connection.
    if (held === 'shed') return new ProxyError('LB_ERR_SHED', { source: 'internal' })
    return new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' })
  }
  // While the prompt was held, a reload may have removed the endpoint (closing its pool) or health
  // may have taken it out: place the request again rather than send it there.
  if (paced && !stillServes(upstream, endpoint)) {
    release(NEUTRAL_OUTCOME)
    upstream.group.unsent(endpoint, options.pick)
    return new ProxyError('LB_ERR_NO_HEALTHY_UPSTREAM', {
      source: 'internal',
      retryable: true,
      message: 'the endpoint left the upstream while the request was held',
    })
  }
  const pool = deps.pools.get(endpoint.spec.origin, {
    connectTimeoutMs: timeouts.connectMs,
    maxConnections: upstream.maxConnections,
  })
  // LLM responses are watched as they pass: first token, inter-token gaps and reported usage.
  let tap = llm ? createResponseTap(llm.api, llm.stream) : undefined
  // Whether the response streams, by its content type: an engine that reads `"stream": "true"`
  // leniently streams what the body parser took for a plain request, and a provider that ignores
  // `stream` answers one body.
  let isStreamed = llm?.stream === true
  // An upstream that compressed its response though asked not to: its tokens cannot be seen.
  let isTapBlind = false
  let awaitingFirstToken = llm !== undefined
  // The client pushed back: from then on tokens passed at its pace (see the capacity learner).
  let clientStalled = false
  let stallTimer: Timer | undefined
  const sentAt = deps.clock.now()
  // Its prefill is done: the endpoint has room for the next prompt, so the queue may let one go.
  const prefilled = (isFirstToken: boolean) => {
    awaitingFirstToken = false
    lease.firstToken()
    paced?.done(isFirstToken)
    notifyAdmission()
  }
  const prefillEnd =
    llm !== undefined && !llm.stream
      ? predictPrefillEnd(
          {
            endpointId: endpoint.id,
            pendingPrefillTokens: pacer
              ? pacer.sentPrefillTokens(endpoint.id)
              : endpoint.countedPrefillTokens,
          },
          { clock: deps.clock, capacity: deps.llmSignals.capacity },
          () => {
            if (!awaitingFirstToken) return
            prefilled(false)
          },
        )
      : undefined
  // An LLM response's head goes to the client with its first byte, not when the engine sends it:
  // an engine answers 200 at once and then queues the prompt, and if it stays silent past
  // `idleMs` the client must get a 504 in its API's shape, not a 200 cut short. Other traffic
  // gets its head at once, as nginx and Envoy send it: flushed, when a streamed body (no
  // Content-Length, an event stream say) may idle for minutes before its first byte.
  let heldHead: { readonly status: number; readonly headers: ResponseHeaders } | undefined
  const sendHead = () => {
    if (heldHead === undefined) return
    res.writeHead(heldHead.status, heldHead.headers)
    heldHead = undefined
  }
  const handle = forward(
    pool,
    {
      path: options.path,
      method: ctx.method,
      headers: options.headers,
      body: options.body,
      firstByteTimeoutMs: timeouts.firstByteMs,
      connectionWaitMs: timeouts.connectMs + timeouts.firstByteMs,
      idleTimeoutMs: timeouts.idleMs,
    },
    {
      start(status, upstreamResponseHeaders) {
        if (res.destroyed) return false
        ctx.upstreamLatencyMs = deps.clock.now() - sentAt
        ctx.status = status
        const out = stripHopByHop(upstreamResponseHeaders) as ResponseHeaders
        out['x-request-id'] = ctx.id
        appendVia(out)
        // Anthropic's SDKs read a response's id from `request-id` (`_request_id`), not
        // `x-request-id`: an engine that sends none (vLLM) gets Aya's; an upstream's own is kept.
        if (
          routeConfig.gateway === 'models' &&
          out['request-id'] === undefined &&
          isAnthropicApi(ctx.apiUrl ?? ctx.url, ctx.req.headers)
        ) {
          out['request-id'] = ctx.id
        }
        applyHeaderEdits(out, routeConfig.responseHeaders)
        if (options.setCookie !== undefined) appendSetCookie(out, options.setCookie)
        if (routeConfig.debugHeaders) out['x-aya-endpoint'] = endpoint.id
        heldHead = { status, headers: out }
        if (llm === undefined) {
          sendHead()
          if (upstreamResponseHeaders['content-length'] === undefined) res.flushHeaders()
        }
        const encoding = upstreamResponseHeaders['content-encoding']
        // Codings are case-insensitive, and `identity` is none.
        isTapBlind =
          tap !== undefined &&
          encoding !== undefined &&
          encoding !== 'identity' &&
          contentCodings(String(encoding)).length > 0
        const contentType = String(upstreamResponseHeaders['content-type'] ?? '')
        if (llm && status < 300 && contentType !== '') {
          const isSse = contentType.toLowerCase().startsWith('text/event-stream')
          if (isSse !== isStreamed) {
            isStreamed = isSse
            tap = createResponseTap(llm.api, isSse)
            // It streams after all: its first token, not a prediction, ends its prefill.
            if (isSse) prefillEnd?.clear()
          }
        }
        if (awaitingFirstToken && (status >= 300 || !isStreamed || isTapBlind)) prefilled(false)
        return true
      },
      data(chunk) {
        if (tap && !isTapBlind) {
          tap.onChunk(chunk, deps.clock.now())
          if (awaitingFirstToken && tap.firstTokenAtMs !== undefined) {
            prefilled(true)
          }
          // Several sequences stream interleaved: a decode step makes one token of each.
          if (llm && isStreamed) {
            lease.progress(Math.floor(tap.contentEvents / (llm.sequences ?? 1)))
          }
        }
        ctx.bytesOut += chunk.length
        sendHead()
        return res.write(chunk)
      },
      onDrain(resume) {
        // Tokens now pass at the client's pace, not the engine's.
        lease.clientStalled()
        clientStalled = true
        // A client that stops reading holds an upstream connection and its accounting: after as
        // long a silence as the upstream is allowed (`idleMs`), it is cut like one that left.
        stallTimer = deps.clock.setTimer(timeouts.idleMs, () => res.destroy())
        res.once('drain', () => {
          stallTimer?.clear()
          stallTimer = undefined
          resume()
        })
      },
      end() {
        sendHead()
        res.end()
      },
    },
    deps,
  )
  const stopWatching = whenClientGone(res, () =>
    handle.abort(new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' })),
  )
  const result = await handle.done.finally(stopWatching)
  prefillEnd?.clear()
  stallTimer?.clear()
  const latencyMs = ctx.upstreamLatencyMs ?? deps.clock.now() - sentAt
  const error = result.error
  const tapped = tap?.finish()
  // What the client got of this attempt, for the access log and metrics; a retry's replaces it.
  if (tapped && llm) recordLlmResult(ctx, tapped, isStreamed && !isTapBlind, llm.sequences)
  // A client that went away, or sent too much or too slowly, says nothing about the endpoint.
  const endpointFailed = error !== undefined && error.source !== 'downstream'
  // The engine failed mid-generation, in an error event, after its success status went out: the
  // client got a 200, but the endpoint failed the request as surely as one that reset.
  const failedInBand = tapped?.sawError === true && ctx.status < 400
  // A stream that ended at once with no token and no usage claiming one (`[DONE]` alone) answered
  // nothing. Counted a success, it left an endpoint that fails this way looking idle and fast, and
  // every policy that favours those sent it most of the traffic (the black hole). An engine that
  // stops at its first token does the same without usage, but rarely, and one success undoes it.
  const answeredNothing =
    tapped !== undefined &&
    isStreamed &&
    !isTapBlind &&
    error === undefined &&
    ctx.status < 300 &&
    tapped.contentEvents === 0 &&
    !((tapped.usage?.completionTokens ?? 0) > 0)
  const ok = !endpointFailed && !failedInBand && !answeredNothing && ctx.status < 500
  release({
    ok,
    status: ctx.status,
    latencyMs,
    // The client left (or sent too much or too slowly) before the endpoint could answer in full,
    // and the endpoint had not failed it already (a 5xx, an error event): that says nothing.
    isNeutral: ok && error?.source === 'downstream',
  })
  // Never put on a connection (not connected, or given up on first, by a client gone before its
  // turn): the prompt never reached the engine, so nothing of it is cached there.
  if (!result.sentUpstream) upstream.group.unsent(endpoint, options.pick)
  if (tapped && llm) {
    deps.llmSignals.observe({
      endpoint,
      // As it was answered: a body's first byte is no first token.
      llm: isStreamed === llm.stream ? llm : { ...llm, stream: isStreamed },
      // What the stream still teaches (its usage, its time to first token) is learned: the tap's
      // `sawError` keeps it out of output-length learning alone.
      ok: !endpointFailed && ctx.status < 400,
      completed: error === undefined && ctx.status < 400,
      endpointCurrent: upstream.group.find(endpoint.id) === endpoint,
      clientStalled,
      ...prefillEvidenceOf(paced, { sentAtMs: sentAt, prefillAheadTokens, prefillTokens }),
      tap: tapped,
    })
  }
  if (error && res.headersSent) {
    // The response has begun: the only honest signal left is to cut the connection.
    ctx.errorCode = error.code
    ctx.errorDetail = upstreamErrorDetail(error)
    cutResponse(res)
    return undefined
  }
  if (failedInBand && error === undefined) {
    // The stream went through as sent; the access log and the error count still record the
    // failure, with the engine's own message.
    ctx.errorCode = 'LB_ERR_UPSTREAM_STREAM_ERROR'
    const detail = tapped?.errorMessage === undefined ? undefined : detailLine(tapped.errorMessage)
    if (detail !== undefined) ctx.errorDetail = detail
  }
  return error
}

/**
 * Sets the request's time to first token (streams only: a body's first byte is no token), time
 * per output token and reported usage. Time to first token runs from the request's arrival, on
 * the clock the tap was fed by, to the first content event passed to the client.
 */
function recordLlmResult(
  ctx: RequestContext,
  tapped: TapResult,
  streamed: boolean,
  sequences: number | undefined,
): void {
  const { firstTokenAtMs, lastTokenAtMs, usage } = tapped
  ctx.promptTokens = tokenCount(usage?.promptTokens)
  ctx.completionTokens = tokenCount(usage?.completionTokens)
  ctx.ttftMs = undefined
  ctx.timePerOutputTokenMs = undefined
  if (!streamed || firstTokenAtMs === undefined) return
  ctx.ttftMs = firstTokenAtMs - ctx.startMs
  // Several sequences stream interleaved: each decode step yields one token of each.
  const tokens = (ctx.completionTokens ?? tapped.contentEvents) / (sequences ?? 1)
  if (tokens >= 2 && lastTokenAtMs !== undefined && lastTokenAtMs > firstTokenAtMs)
    ctx.timePerOutputTokenMs = (lastTokenAtMs - firstTokenAtMs) / (tokens - 1)
}

/**
 * A count the upstream reported, if it is one: its usage is its own JSON, where `1e999` parses as
 * Infinity and a negative would run a counter backwards.
 */
function tokenCount(value: number | undefined): number | undefined {
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** The group still sends to this endpoint's server: same id, same origin, eligible. */
function stillServes(upstream: UpstreamRuntime, endpoint: Endpoint): boolean {
  const current = upstream.group.find(endpoint.id)
  return (
    current !== undefined &&
    current.spec.origin === endpoint.spec.origin &&
    upstream.group.eligible().includes(current)
  )
}

/**
 * How the prompt's hold ends: released to the engine, moved to an idle one by the pacer, given up
 * by a shutdown, or the client went away first.
 */
function released(
  paced: PacedPrefill,
  res: ServerResponse,
  movable: boolean,
): Promise<'released' | 'moved' | 'shed' | 'gone'> {
  return new Promise((resolve) => {
    let isGone = false
    const stopWatching = whenClientGone(res, () => {
      isGone = true
      resolve('gone')
    })
    const settle = (outcome: 'released' | 'moved' | 'shed') => () => {
      stopWatching()
      resolve(!isGone && !res.destroyed ? outcome : 'gone')
    }
    paced.whenReleased(settle('released'), movable ? settle('moved') : undefined, settle('shed'))
  })
}

function appendVia(headers: ResponseHeaders): void {
  const existing = headers.via
  headers.via = existing === undefined ? '1.1 aya' : `${String(existing)}, 1.1 aya`
}

function appendSetCookie(headers: ResponseHeaders, cookie: string): void {
  const existing = headers['set-cookie']
  if (existing === undefined) headers['set-cookie'] = cookie
  else
    headers['set-cookie'] = Array.isArray(existing)
      ? [...existing, cookie]
      : [String(existing), cookie]
}

/** Response headers as Node writes them (numbers allowed), unlike the request side's. */
type ResponseHeaders = Record<string, string | string[] | number>
