import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { boundEndpointOf } from '../balancer/bound-endpoint.ts'
import type { PickContext } from '../balancer/picker.ts'
import type { ListenerConfig } from '../config/schema.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { LlmSignals } from '../llm/llm-signals.ts'
import { type PacedPrefill, prefillEvidenceOf } from '../llm/prefill-pacer.ts'
import { createResponseTap } from '../llm/response-tap.ts'
import type { AdmissionRejectReason } from '../resilience/admission-types.ts'
import { resolvePriority } from '../resilience/priority-classes.ts'
import type { Endpoint, Lease, LeaseCost, Outcome } from '../upstream/endpoint.ts'
import type { PoolRegistry } from '../upstream/pool-registry.ts'
import type { Clock, Timer } from '../util/clock.ts'
import type { Random } from '../util/random.ts'
import { limitBody } from './body-limit.ts'
import { createClientAddressResolver, createTrustedProxyMatcher } from './client-address.ts'
import type { ErrorCode } from './errors.ts'
import { ProxyError } from './errors.ts'
import { forward } from './forward.ts'
import { appendForwarded, stripHopByHop } from './headers.ts'
import type { KeySource } from './key-selector.ts'
import { sendLocalReply } from './local-reply.ts'
import { mirrorRequest } from './mirror.ts'
import { type LlmErrorDetail, llmErrorFormat, runModelsGateway } from './models-gateway.ts'
import { predictPrefillEnd } from './predicted-prefill-end.ts'
import type { ProxyRuntime, RouteRuntime, UpstreamRuntime } from './proxy-runtime.ts'
import { type RequestContext, requestIdFrom } from './request-context.ts'
import { applyHeaderEdits, redirectLocation, rewritePrefix } from './route-actions.ts'
import { normaliseHost } from './route-table.ts'

export interface HttpProxyDeps {
  readonly clock: Clock
  readonly random: Random
  readonly pools: PoolRegistry
  readonly generateId: () => string
  /** Called exactly once per request, after the response ends or fails. */
  readonly onRequestDone: (ctx: RequestContext) => void
  readonly runtime: () => ProxyRuntime
  /**
   * What Aya learns from LLM traffic: it counts prompt tokens and predicts a request's work
   * (for the admission queue), and is told what each LLM response's tap saw.
   */
  readonly llmSignals: LlmSignals
  /** Shared by all listeners; decides when X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[]
}

/** Connect failures are retried on another endpoint only for requests without a body. */
const MAX_CONNECT_ATTEMPTS = 3

/**
 * The L7 request pipeline for one listener: route, act (redirect, rewrite, headers, mirror),
 * choose an endpoint, forward with streaming both ways, and account for the outcome.
 */
export function createHttpProxy(
  listener: ListenerConfig,
  deps: HttpProxyDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const trustedProxies = listener.trustedProxies ?? deps.trustedProxies
  const resolveClient = createClientAddressResolver(trustedProxies)
  const isTrustedPeer = createTrustedProxyMatcher(trustedProxies)
  return (req, res) => {
    const ctx: RequestContext = {
      id: requestIdFrom(req.headers['x-request-id'], deps.generateId),
      startMs: deps.clock.now(),
      listener: listener.name,
      clientIp: resolveClient(req.socket.remoteAddress, req.headers['x-forwarded-for']),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      req,
      res,
      route: undefined,
      upstream: undefined,
      endpoint: undefined,
      llm: undefined,
      attempts: 0,
      status: 0,
      errorCode: undefined,
      bytesIn: 0,
      bytesOut: 0,
      upstreamLatencyMs: undefined,
      durationMs: 0,
    }
    handle(ctx, listener, deps, isTrustedPeer(req.socket.remoteAddress ?? '')).then(
      () => finish(ctx, deps),
      (error: unknown) => {
        const code: ErrorCode = error instanceof ProxyError ? error.code : 'LB_ERR_INTERNAL'
        fail(ctx, code)
        finish(ctx, deps)
      },
    )
  }
}

async function handle(
  ctx: RequestContext,
  listener: ListenerConfig,
  deps: HttpProxyDeps,
  trustedPeer: boolean,
): Promise<void> {
  const { req } = ctx
  if (!ctx.url.startsWith('/'))
    return fail(ctx, 'LB_ERR_BAD_REQUEST', 'expected an origin-form request target')
  const runtime = deps.runtime()
  const queryAt = ctx.url.indexOf('?')
  const path = queryAt === -1 ? ctx.url : ctx.url.slice(0, queryAt)
  const host = normaliseHost(req.headers.host)
  const route = runtime.routes.match({ method: ctx.method, path, host, headers: req.headers })
  if (!route) return fail(ctx, 'LB_ERR_NO_ROUTE')
  ctx.route = route
  const routeRuntime = runtime.routeRuntimes[route.index]!
  const routeConfig = routeRuntime.config

  if (routeConfig.redirect) {
    const location = redirectLocation(
      routeConfig.redirect,
      { proto: 'http', host: req.headers.host ?? host, url: ctx.url },
      routeConfig.match.pathPrefix,
    )
    ctx.status = routeConfig.redirect.status
    ctx.res.writeHead(ctx.status, { location, 'content-length': 0, 'x-request-id': ctx.id })
    ctx.res.end()
    return
  }

  const maxBodyBytes = routeConfig.maxBodyBytes ?? listener.maxBodyBytes
  const contentLength = req.headers['content-length']
  const declaredBytes = contentLength === undefined ? undefined : Number(contentLength)
  if (declaredBytes !== undefined && declaredBytes > maxBodyBytes) {
    return fail(ctx, 'LB_ERR_BODY_TOO_LARGE', undefined, true)
  }
  const hasBody =
    (declaredBytes !== undefined && declaredBytes > 0) ||
    req.headers['transfer-encoding'] !== undefined

  let upstreamName: string
  let llm: LlmRequest | undefined
  let body: Readable | Buffer | null
  const headers = upstreamHeaders(ctx, routeRuntime, trustedPeer)
  const upstreamPath = routeConfig.rewrite
    ? rewritePrefix(ctx.url, routeConfig.match.pathPrefix ?? '/', routeConfig.rewrite.pathPrefix)
    : ctx.url
  ctx.apiUrl = upstreamPath
  if (routeConfig.gateway === 'models') {
    // The API is the one the upstream serves: a route may mount it under a prefix it rewrites.
    const outcome = await runModelsGateway(ctx, upstreamPath.split('?', 1)[0]!, {
      registry: runtime.models,
      clock: deps.clock,
      maxBodyBytes,
      sessionHeader: routeConfig.sessionHeader,
      countTokens: deps.llmSignals.tokens.count,
    })
    if (outcome.kind === 'answered') return
    if (outcome.kind === 'error') {
      const closeConnection = outcome.error.code === 'LB_ERR_BODY_TOO_LARGE'
      return fail(ctx, outcome.error.code, outcome.error.message, closeConnection, outcome)
    }
    upstreamName = outcome.upstream
    llm = outcome.llm
    body = outcome.body
    headers['content-length'] = String(outcome.body.length)
    // The body goes upstream decoded: a client's encoding no longer describes it.
    delete headers['content-encoding']
    // The response is read on its way through (first token, usage), which a compressed body
    // would hide; LLM responses are small next to what they cost to generate.
    headers['accept-encoding'] = 'identity'
    // It parsed as JSON, so it goes as JSON: `curl -d` says form-urlencoded, and an engine's
    // server would refuse the request (422) after it was placed and charged.
    const contentType = headers['content-type']
    if (typeof contentType !== 'string' || !/\bjson\b/i.test(contentType)) {
      headers['content-type'] = 'application/json'
    }
  } else {
    upstreamName = routeRuntime.chooseUpstream
      ? routeRuntime.chooseUpstream()
      : routeConfig.upstream!
    body = hasBody ? (declaredBytes === undefined ? limitBody(req, maxBodyBytes) : req) : null
  }
  const upstream = runtime.upstreams.get(upstreamName)!
  ctx.upstream = upstreamName
  ctx.llm = llm

  if (routeConfig.mirror) {
    const shadow = runtime.upstreams.get(routeConfig.mirror.upstream)
    if (shadow && deps.random() * 100 < routeConfig.mirror.percent) {
      const mirrored = Buffer.isBuffer(body) ? Readable.from([body]) : body
      const primary = mirrorRequest(
        { shadow, path: upstreamPath, method: ctx.method, headers, body: mirrored },
        deps,
      )
      if (!Buffer.isBuffer(body)) body = primary
    }
  }

  const keySource: KeySource = {
    headers: req.headers,
    path: ctx.url,
    clientIp: ctx.clientIp,
    routeName: route.name,
  }
  const hashKey = upstream.hashKey?.(keySource)
  const exclude = new Set<string>()
  const boundId = upstream.sticky ? await upstream.sticky.lookup(keySource) : undefined
  // The first try's context is the one admission asked the policy about, so the policy can keep
  // the promise `canTake` made (same object).
  const firstPick: PickContext = {
    attempt: 0,
    exclude,
    hashKey,
    clientIp: ctx.clientIp,
    llm,
    boundTo: boundId,
  }
  if (upstream.admission) {
    const waited = await admit(ctx, upstream, keySource, {
      runtime,
      firstPick,
      body,
      exclude,
      llmSignals: deps.llmSignals,
    })
    if (waited !== undefined) {
      // Whole seconds in [1, 60] already (retryAfterHintMs).
      const retryAfter = String(waited.retryAfterMs / 1000)
      return fail(ctx, waited.reason, undefined, false, { headers: { 'retry-after': retryAfter } })
    }
  }
  // A buffered body can be sent again; a streamed one is consumed by the first attempt.
  const maxAttempts = hasBody && !Buffer.isBuffer(body) ? 1 : MAX_CONNECT_ATTEMPTS

  let lastError: ProxyError | undefined
  for (;;) {
    const pick: PickContext =
      ctx.attempts === 0 ? firstPick : { ...firstPick, attempt: ctx.attempts }
    // The sticky binding while its endpoint is eligible and untried, else the policy's pick.
    const endpoint = boundEndpointOf(upstream.group.eligible(), pick) ?? upstream.group.select(pick)
    // Out of endpoints after a failure: report what went wrong, not that none were healthy.
    if (!endpoint) return fail(ctx, lastError?.code ?? 'LB_ERR_NO_HEALTHY_UPSTREAM')
    ctx.endpoint = endpoint
    ctx.attempts++
    // Asked right after the pick, before the sticky bind awaits.
    const cost = upstream.group.leaseCost(endpoint, pick)
    const setCookie = upstream.sticky
      ? await upstream.sticky.bind(keySource, endpoint.id, boundId)
      : undefined
    const error = await dispatchTo(ctx, upstream, endpoint, {
      pick,
      cost,
      path: upstreamPath,
      headers,
      body,
      routeConfig,
      setCookie,
      deps,
    })
    if (!error) return
    const canRetry =
      error.retryable && !error.sentUpstream && ctx.attempts < maxAttempts && !ctx.res.headersSent
    if (!canRetry) return fail(ctx, error.code, undefined, error.code === 'LB_ERR_BODY_TOO_LARGE')
    lastError = error
    exclude.add(endpoint.id)
  }
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

interface DispatchOptions {
  readonly path: string
  readonly headers: Record<string, string | string[]>
  readonly body: Readable | Buffer | null
  readonly routeConfig: RouteRuntime['config']
  readonly setCookie: string | undefined
  readonly cost: LeaseCost | undefined
  /** The context the endpoint was picked with: told to the policy if the request never gets there. */
  readonly pick: PickContext
  readonly deps: HttpProxyDeps
}

async function dispatchTo(
  ctx: RequestContext,
  upstream: UpstreamRuntime,
  endpoint: Endpoint,
  options: DispatchOptions,
): Promise<ProxyError | undefined> {
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
  const prefillAheadTokens = endpoint.pendingPrefillTokens
  const lease: Lease = endpoint.begin(options.cost)
  // The policy may hold the prompt until the engine is about to finish the prefill it has.
  const prefillTokens = options.cost?.prefillTokens ?? llm?.promptTokens ?? 0
  const pacer = llm ? upstream.group.pacer() : undefined
  const paced = pacer?.enter(endpoint.id, prefillTokens, llm?.promptTokens)
  // Bound and counted: the admission queue may let the next request go.
  upstream.admission?.notify()
  // The request no longer occupies the endpoint: its lease, its pacer slot, the queue's view.
  const release = (outcome: Outcome): void => {
    lease.end(outcome)
    paced?.done(false)
    upstream.admission?.notify()
  }
  if (paced && !(await released(paced, res))) {
    release({ ok: true, status: 0, latencyMs: 0 })
    upstream.group.unsent(endpoint, options.pick)
    return new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' })
  }
  // While the prompt was held, a reload may have removed the endpoint (closing its pool) or health
  // may have taken it out: place the request again rather than send it there.
  if (paced && !stillServes(upstream, endpoint)) {
    release({ ok: true, status: 0, latencyMs: 0 })
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
  const prefilled = (isFirstToken: boolean) => {
    awaitingFirstToken = false
    lease.firstToken()
    paced?.done(isFirstToken)
  }
  const prefillEnd =
    llm !== undefined && !llm.stream
      ? predictPrefillEnd(
          {
            endpointId: endpoint.id,
            pendingPrefillTokens: pacer
              ? pacer.sentPrefillTokens(endpoint.id)
              : endpoint.pendingPrefillTokens,
          },
          { clock: deps.clock, capacity: deps.llmSignals.capacity },
          () => {
            if (!awaitingFirstToken) return
            prefilled(false)
            upstream.admission?.notify()
          },
        )
      : undefined
  const handle = forward(
    pool,
    {
      path: options.path,
      method: ctx.method,
      headers: options.headers,
      body: options.body,
      firstByteTimeoutMs: timeouts.firstByteMs,
      idleTimeoutMs: timeouts.idleMs,
    },
    {
      start(status, upstreamResponseHeaders) {
        if (res.destroyed) return false
        ctx.upstreamLatencyMs = deps.clock.now() - sentAt
        ctx.status = status
        const out = stripHopByHop(upstreamResponseHeaders) as Record<
          string,
          string | string[] | number
        >
        out['x-request-id'] = ctx.id
        appendVia(out)
        applyHeaderEdits(out, routeConfig.responseHeaders)
        if (options.setCookie !== undefined) appendSetCookie(out, options.setCookie)
        if (routeConfig.debugHeaders) out['x-aya-endpoint'] = endpoint.id
        res.writeHead(status, out)
        const encoding = upstreamResponseHeaders['content-encoding']
        isTapBlind = encoding !== undefined && encoding !== 'identity'
        const contentType = String(upstreamResponseHeaders['content-type'] ?? '')
        if (llm && status < 300 && contentType !== '') {
          const isSse = contentType.toLowerCase().startsWith('text/event-stream')
          if (isSse !== isStreamed) {
            isStreamed = isSse
            tap = createResponseTap(llm.api, isSse)
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
            upstream.admission?.notify()
          }
          // Several sequences stream interleaved: a decode step makes one token of each.
          if (llm && isStreamed) {
            lease.progress(Math.floor(tap.contentEvents / (llm.sequences ?? 1)))
          }
        }
        ctx.bytesOut += chunk.length
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
        res.end()
      },
    },
  )
  const onClose = () => {
    if (!res.writableFinished)
      handle.abort(new ProxyError('LB_ERR_CLIENT_ABORTED', { source: 'downstream' }))
  }
  res.once('close', onClose)
  const result = await handle.done
  prefillEnd?.clear()
  stallTimer?.clear()
  res.off('close', onClose)
  const latencyMs = ctx.upstreamLatencyMs ?? deps.clock.now() - sentAt
  const error = result.error
  // A client that went away says nothing about the endpoint's health.
  const endpointFailed =
    error !== undefined &&
    error.code !== 'LB_ERR_CLIENT_ABORTED' &&
    error.code !== 'LB_ERR_BODY_TOO_LARGE'
  const ok = !endpointFailed && ctx.status < 500
  release({ ok, status: ctx.status, latencyMs })
  // Not connected: the prompt never reached the engine. (A client that leaves mid-response has a
  // downstream error: the engine got the prompt.)
  if (error?.source === 'upstream' && !error.sentUpstream)
    upstream.group.unsent(endpoint, options.pick)
  if (tap && llm) {
    deps.llmSignals.observe({
      endpoint,
      // As it was answered: a body's first byte is no first token.
      llm: isStreamed === llm.stream ? llm : { ...llm, stream: isStreamed },
      ok: ok && ctx.status < 400,
      completed: error === undefined && ctx.status < 400,
      endpointCurrent: upstream.group.find(endpoint.id) === endpoint,
      clientStalled,
      ...prefillEvidenceOf(paced, { sentAtMs: sentAt, prefillAheadTokens, prefillTokens }),
      tap: tap.finish(),
    })
  }
  if (error && result.responseStarted) {
    // The response has begun: the only honest signal left is to cut the connection.
    ctx.errorCode = error.code
    res.destroy()
    return undefined
  }
  return error
}

/** Resolves true when the pacer releases the prompt, false if the client goes away first. */
function released(paced: PacedPrefill, res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => resolve(false)
    res.once('close', onClose)
    paced.whenReleased(() => {
      res.off('close', onClose)
      resolve(!res.destroyed)
    })
  })
}

function upstreamHeaders(
  ctx: RequestContext,
  route: RouteRuntime,
  trusted: boolean,
): Record<string, string | string[]> {
  const headers = stripHopByHop(ctx.req.headers)
  appendForwarded({
    headers,
    clientIp: ctx.clientIp,
    peerIp: ctx.req.socket.remoteAddress ?? '',
    proto: 'http',
    host: ctx.req.headers.host,
    trusted,
  })
  headers['x-request-id'] = ctx.id
  applyHeaderEdits(headers, route.config.requestHeaders)
  return headers
}

function appendVia(headers: Record<string, string | string[] | number>): void {
  const existing = headers.via
  headers.via = existing === undefined ? '1.1 aya' : `${String(existing)}, 1.1 aya`
}

function appendSetCookie(
  headers: Record<string, string | string[] | number>,
  cookie: string,
): void {
  const existing = headers['set-cookie']
  if (existing === undefined) headers['set-cookie'] = cookie
  else
    headers['set-cookie'] = Array.isArray(existing)
      ? [...existing, cookie]
      : [String(existing), cookie]
}

function fail(
  ctx: RequestContext,
  code: ErrorCode,
  message?: string,
  closeConnection?: boolean,
  detail?: LlmErrorDetail & { readonly headers?: Readonly<Record<string, string>> | undefined },
): void {
  ctx.errorCode = code
  const format =
    ctx.route?.config.gateway === 'models'
      ? llmErrorFormat(ctx.apiUrl ?? ctx.url, detail, ctx.req.headers)
      : undefined
  const reply = sendLocalReply(ctx.res, code, {
    requestId: ctx.id,
    message,
    closeConnection,
    format,
    headers: detail?.headers,
  })
  ctx.status = reply.status
  ctx.bytesOut += reply.bodyBytes
}

/**
 * Waits on the group's admission queue until the policy can place the request within the TTFT SLO.
 * Returns the rejection when it cannot be started in time (or is shed), undefined once admitted.
 */
async function admit(
  ctx: RequestContext,
  upstream: UpstreamRuntime,
  keySource: KeySource,
  request: {
    readonly runtime: ProxyRuntime
    readonly firstPick: PickContext
    readonly body: Readable | Buffer | null
    /** The first pick's exclusions: an endpoint held for an urgent request joins them. */
    readonly exclude: Set<string>
    readonly llmSignals: LlmSignals
  },
): Promise<{ reason: AdmissionRejectReason; retryAfterMs: number } | undefined> {
  const priorities = request.runtime.config.priorities
  const raw = ctx.req.headers[priorities.header]
  // The route's priority stands in for a header that is absent or names no class or integer.
  const resolved = resolvePriority(
    Array.isArray(raw) ? raw[0] : raw,
    priorities,
    ctx.route?.config.priority,
  )
  const aborted = new AbortController()
  const onClose = () => aborted.abort()
  ctx.res.once('close', onClose)
  const llm = request.firstPick.llm
  const result = await upstream.admission!.acquire({
    ctx: request.firstPick,
    priority: resolved.priority,
    className: resolved.className,
    sheddable: resolved.sheddable,
    tenant: upstream.tenantKey?.(keySource) ?? '',
    sizeBytes: Buffer.isBuffer(request.body) ? request.body.length : 0,
    predictedCost: llm ? request.llmSignals.predictedCost(llm) : 1,
    signal: aborted.signal,
  })
  ctx.res.off('close', onClose)
  if (!result.admitted) return { reason: result.reason, retryAfterMs: result.retryAfterMs }
  if (result.avoid !== undefined) request.exclude.add(result.avoid)
  return undefined
}

function finish(ctx: RequestContext, deps: HttpProxyDeps): void {
  const { req } = ctx
  const declared = req.headers['content-length']
  ctx.bytesIn = declared !== undefined ? Number(declared) || 0 : ctx.bytesIn
  ctx.durationMs = deps.clock.now() - ctx.startMs
  deps.onRequestDone(ctx)
}
