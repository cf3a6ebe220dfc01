import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { boundEndpointOf } from '../balancer/bound-endpoint.ts'
import type { PickContext } from '../balancer/picker.ts'
import { type Config, HOST_NAME, type ListenerConfig } from '../config/schema.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import {
  PROXY_METHODS,
  type RefusalReason,
  type RefusedRequest,
  type RequestHandler,
} from '../util/http-server.ts'
import { absoluteFormOf, normalizePath, pathOf, queryOf } from '../util/request-target.ts'
import { admitRequest } from './admit-request.ts'
import { limitBody } from './body-limit.ts'
import { canRetry } from './can-retry.ts'
import { createClientAddressResolver, createTrustedProxyMatcher } from './client-address.ts'
import { dispatchTo, MOVED_TO_IDLE } from './dispatch-to.ts'
import type { ErrorCode } from './errors.ts'
import { ProxyError, statusForCode } from './errors.ts'
import { appendForwarded, clientProtoOf, stripHopByHop } from './headers.ts'
import type { HttpProxyDeps } from './http-proxy-deps.ts'
import type { KeySource } from './key-selector.ts'
import { sendLocalReply } from './local-reply.ts'
import { mirrorRequest } from './mirror.ts'
import {
  type LlmErrorDetail,
  llmErrorFormat,
  llmErrorHeaders,
  runModelsGateway,
} from './models-gateway.ts'
import type { RouteRuntime } from './proxy-runtime.ts'
import { type RequestContext, requestIdFrom } from './request-context.ts'
import { applyHeaderEdits, redirectLocation, rewritePrefix } from './route-actions.ts'
import { normaliseHost } from './route-table.ts'
import { upstreamErrorDetail } from './upstream-error.ts'

/**
 * The L7 request pipeline for one listener: route, act (redirect, rewrite, headers, mirror),
 * choose an endpoint, forward with streaming both ways, and account for the outcome.
 */
export function createHttpProxy(
  initialListener: ListenerConfig,
  deps: HttpProxyDeps,
): RequestHandler {
  // The listener's settings as the running config has them: a reload that stops trusting a proxy
  // or lowers the body limit applies to the next request (the address stays bound as it was).
  let settingsFrom: Config | undefined
  let settings: ListenerSettings | undefined
  const current = (): ListenerSettings => {
    const config = deps.runtime().config
    if (settings === undefined || config !== settingsFrom) {
      settingsFrom = config
      const listener =
        config.listeners.find((l) => l.name === initialListener.name) ?? initialListener
      const trustedProxies = listener.trustedProxies ?? config.trustedProxies
      settings = {
        listener,
        resolveClient: createClientAddressResolver(trustedProxies),
        isTrustedPeer: createTrustedProxyMatcher(trustedProxies),
      }
    }
    return settings
  }
  const serve = (req: IncomingMessage, res: ServerResponse, awaitingContinue: boolean) => {
    const { listener, resolveClient, isTrustedPeer } = current()
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
      modelEntry: undefined,
      ttftMs: undefined,
      timePerOutputTokenMs: undefined,
      promptTokens: undefined,
      completionTokens: undefined,
      awaitingContinue,
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
        if (error instanceof ProxyError) failWith(ctx, error)
        else fail(ctx, 'LB_ERR_INTERNAL')
        finish(ctx, deps)
      },
    )
  }
  // Logged and counted as any other request, with no route: what it asked is all there is.
  const refused = (request: RefusedRequest) => {
    const { listener, resolveClient } = current()
    const errorCode = REFUSAL_CODES[request.reason]
    deps.onRequestRefused?.({
      id: requestIdFrom(request.headers['x-request-id'], deps.generateId),
      listener: listener.name,
      clientIp: resolveClient(request.remoteAddress, request.headers['x-forwarded-for']),
      method: request.method,
      url: request.url,
      route: undefined,
      upstream: undefined,
      endpoint: undefined,
      llm: undefined,
      attempts: 0,
      status: statusForCode(errorCode),
      errorCode,
      bytesIn: 0,
      bytesOut: 0,
      upstreamLatencyMs: undefined,
      durationMs: 0,
    })
  }
  return Object.assign((req: IncomingMessage, res: ServerResponse) => serve(req, res, false), {
    // Node would send `100 Continue` first: a body declared too large could not be refused
    // before the client sent it.
    checkContinue: (req: IncomingMessage, res: ServerResponse) => serve(req, res, true),
    refused,
  })
}

/** The code of each answer the HTTP server makes itself: each code's status is the one it sends. */
const REFUSAL_CODES: Readonly<Record<RefusalReason, ErrorCode>> = {
  unparsable: 'LB_ERR_BAD_REQUEST',
  connect: 'LB_ERR_METHOD_NOT_ALLOWED',
  'head-timeout': 'LB_ERR_REQUEST_TIMEOUT',
  'chunk-extensions-too-large': 'LB_ERR_BODY_TOO_LARGE',
  expectation: 'LB_ERR_EXPECTATION_FAILED',
  'head-too-large': 'LB_ERR_HEADERS_TOO_LARGE',
  'missing-host': 'LB_ERR_BAD_REQUEST',
  // Nothing is written (answers go in order): the status is the log's and the metrics' alone.
  'pipeline-overflow': 'LB_ERR_RATE_LIMITED',
}

async function handle(
  ctx: RequestContext,
  listener: ListenerConfig,
  deps: HttpProxyDeps,
  trustedPeer: boolean,
): Promise<void> {
  const { req } = ctx
  // RFC 9112 §3.2 requires a 400. Node keeps the first Host and drops the rest, so a proxy in
  // front that reads the last one would route and check another host than Aya routes by.
  if (hostLineCount(req.rawHeaders) > 1)
    return fail(ctx, 'LB_ERR_BAD_REQUEST', 'expected one Host header')
  // An upstream that honours TRACE echoes the request as it reached it: with what Aya added (a
  // credential a route sets, X-Real-IP) and the client's cookies. nginx refuses it too.
  if (ctx.method === 'TRACE') {
    return fail(ctx, 'LB_ERR_METHOD_NOT_ALLOWED', 'TRACE is not forwarded', {
      headers: { allow: PROXY_METHODS },
    })
  }
  let originForm = ctx.url
  if (!originForm.startsWith('/')) {
    const absolute = absoluteFormOf(originForm)
    if (absolute === undefined) {
      return fail(
        ctx,
        'LB_ERR_BAD_REQUEST',
        'expected an origin-form or absolute-form request target',
      )
    }
    // Its authority replaces any Host, and is checked as a Host is below.
    req.headers.host = absolute.authority
    originForm = absolute.originForm
  } else if (originForm.includes('#')) {
    // A fragment is no part of a request target (RFC 9112 §3.2), and the absolute-form above
    // refuses one: passed on, the upstream would cut the path or query Aya routed and hashed by.
    return fail(ctx, 'LB_ERR_BAD_REQUEST', 'expected a request target without a fragment')
  }
  // RFC 3986 has no `\` in a path, and a WHATWG URL parser (Node's `new URL`, a browser's) reads
  // one as `/`: `/public\..\admin` matched a route on `/public`, then climbed out of it, or out of
  // its rewrite, at an upstream that parses so. Neither the route nor the normalizer saw a segment.
  // Encoded (`%5C`), it does the same at an upstream that decodes before it parses (IIS, some
  // servlet containers).
  if (BACKSLASH.test(pathOf(originForm))) {
    return fail(ctx, 'LB_ERR_BAD_REQUEST', 'expected a request path without a backslash')
  }
  // Node undoes chunked framing only: a body in another transfer coding (gzip, chunked) would go
  // upstream still coded, with nothing saying so. nginx answers 501 too.
  const transferEncoding = req.headers['transfer-encoding']
  if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked')
    return fail(ctx, 'LB_ERR_UNSUPPORTED', 'only the chunked transfer coding is supported')
  // A Host that is not a host (a path, userinfo) would reach redirect Locations and upstreams.
  if (req.headers.host !== undefined && !HOST_NAME.test(req.headers.host))
    return fail(ctx, 'LB_ERR_BAD_REQUEST', 'expected a Host of a host name or address and a port')
  const runtime = deps.runtime()
  // Routed, rewritten and sent upstream as normalized (the access log keeps what was asked).
  const rawPath = pathOf(originForm)
  const path = normalizePath(rawPath)
  const target = path === rawPath ? originForm : path + queryOf(originForm)
  const host = normaliseHost(req.headers.host)
  const route = runtime.routes.match({ method: ctx.method, path, host, headers: req.headers })
  if (!route) return fail(ctx, 'LB_ERR_NO_ROUTE')
  ctx.route = route
  const routeRuntime = runtime.routeRuntimes[route.index]!
  const routeConfig = routeRuntime.config

  if (routeConfig.redirect) {
    // HTTP/1.0 may leave Host out: a redirect to the same host then has no host to name.
    if (routeConfig.redirect.host === undefined && !req.headers.host)
      return fail(ctx, 'LB_ERR_BAD_REQUEST', 'a redirect to this host needs the request’s Host')
    const location = redirectLocation(
      routeConfig.redirect,
      // Behind a TLS-terminating proxy, an http:// Location would take the client off TLS.
      {
        proto: clientProtoOf(req.headers, trustedPeer, 'http'),
        host: req.headers.host ?? host,
        url: target,
      },
      routeConfig.match.pathPrefix,
    )
    ctx.status = routeConfig.redirect.status
    continueRequest(ctx)
    ctx.res.writeHead(ctx.status, { location, 'content-length': 0, 'x-request-id': ctx.id })
    ctx.res.end()
    return
  }

  // The URL as the upstream's API sees it: set before any reply, which is shaped by that API.
  const upstreamPath = routeConfig.rewrite
    ? rewritePrefix(target, routeConfig.match.pathPrefix ?? '/', routeConfig.rewrite.pathPrefix)
    : target
  ctx.apiUrl = upstreamPath
  const maxBodyBytes = routeConfig.maxBodyBytes ?? listener.maxBodyBytes
  const contentLength = req.headers['content-length']
  const declaredBytes = contentLength === undefined ? undefined : Number(contentLength)
  if (declaredBytes !== undefined && declaredBytes > maxBodyBytes) {
    return fail(ctx, 'LB_ERR_BODY_TOO_LARGE')
  }
  continueRequest(ctx)
  const hasBody =
    (declaredBytes !== undefined && declaredBytes > 0) ||
    req.headers['transfer-encoding'] !== undefined

  let upstreamName: string
  let llm: LlmRequest | undefined
  let modelEntry: string | undefined
  let body: Readable | Buffer | null
  const headers = upstreamHeaders(ctx, routeRuntime, trustedPeer)
  if (routeConfig.gateway === 'models') {
    // The API is the one the upstream serves: a route may mount it under a prefix it rewrites.
    const apiPath = routeConfig.rewrite ? upstreamPath.split('?', 1)[0]! : path
    const outcome = await runModelsGateway(ctx, apiPath, {
      registry: runtime.models,
      clock: deps.clock,
      maxBodyBytes,
      sessionHeader: routeConfig.sessionHeader,
      countTokens: deps.llmSignals.tokens.count,
    })
    if (outcome.kind === 'answered') return
    if (outcome.kind === 'error') {
      return fail(ctx, outcome.error.code, outcome.error.message, outcome)
    }
    upstreamName = outcome.upstream
    llm = outcome.llm
    modelEntry = outcome.modelEntry
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
    // Node's parser holds a declared length to itself; a chunked body is held here. Both are
    // counted as they pass.
    const limits = {
      maxBodyBytes: declaredBytes === undefined ? maxBodyBytes : undefined,
      idleMs: routeConfig.timeouts?.idleMs ?? runtime.upstreams.get(upstreamName)!.timeouts.idleMs,
      onBytes: (bytes: number) => {
        ctx.bytesIn += bytes
      },
    }
    body = hasBody ? limitBody(req, ctx.res, limits, deps) : null
  }
  const upstream = runtime.upstreams.get(upstreamName)!
  ctx.upstream = upstreamName
  ctx.llm = llm
  ctx.modelEntry = modelEntry

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
    path: target,
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
    const waited = await admitRequest(ctx, upstream, keySource, upstream.admission, {
      priorities: runtime.config.priorities,
      firstPick,
      sizeBytes: Buffer.isBuffer(body) ? body.length : 0,
      exclude,
      llmSignals: deps.llmSignals,
    })
    if (waited !== undefined) {
      // Whole seconds in [1, 60] already (retryAfterHintMs).
      const retryAfter = String(waited.retryAfterMs / 1000)
      return fail(ctx, waited.reason, undefined, { headers: { 'retry-after': retryAfter } })
    }
  }
  // A buffered body can be sent again; a streamed one is consumed by the attempt that sends it.
  const resendable = !hasBody || Buffer.isBuffer(body)

  let lastError: ProxyError | undefined
  let lastEndpointId: string | undefined
  let isResent = false
  // A prompt moves at most once: placed back where it was, it would otherwise be moved again at
  // every idle moment, each time losing its place in the line.
  let isMoved = false
  // The sticky binding while its endpoint is eligible and untried, else the policy's pick.
  const choose = (pick: PickContext) =>
    boundEndpointOf(upstream.group.eligible(), pick) ?? upstream.group.select(pick)
  for (;;) {
    const pick: PickContext =
      ctx.attempts === 0 ? firstPick : { ...firstPick, attempt: ctx.attempts }
    let endpoint = choose(pick)
    // A request sent again after its connection closed unanswered goes back to the endpoint it
    // was on when no other is left: the close was the connection's (a keep-alive race), and
    // nginx retries a group of one server the same way.
    if (!endpoint && lastError?.sentUpstream && lastEndpointId !== undefined) {
      exclude.delete(lastEndpointId)
      endpoint = choose(pick)
    }
    // Out of endpoints after a failure: report what went wrong, not that none were healthy.
    if (!endpoint) {
      return lastError ? failWith(ctx, lastError) : fail(ctx, 'LB_ERR_NO_HEALTHY_UPSTREAM')
    }
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
      // A request its session binds to the endpoint stays there. Only the binding sends it to
      // the bound id: when that endpoint is eligible and untried the binding is chosen, and
      // otherwise no policy may pick it either.
      movable: !isMoved && endpoint.id !== boundId,
    })
    if (!error) return
    if (error === MOVED_TO_IDLE) {
      // Not an attempt: nothing was sent. Placed again by the policy, which may keep it where it
      // was (the idle engine may have no KV room for it); it will not move again.
      ctx.attempts--
      isMoved = true
      continue
    }
    const history = {
      method: ctx.method,
      attempts: ctx.attempts,
      resendable,
      resent: isResent,
      responding: ctx.res.headersSent,
    }
    // A prompt held unsent when a shutdown's drain ran out: told when to try again, as those
    // waiting in admission are (Aya is going away, so any other replica may take it now).
    if (error.code === 'LB_ERR_SHED') {
      return fail(ctx, error.code, undefined, { headers: { 'retry-after': '1' } })
    }
    if (!canRetry(error, history)) return failWith(ctx, error)
    if (error.sentUpstream) isResent = true
    lastError = error
    lastEndpointId = endpoint.id
    exclude.add(endpoint.id)
  }
}

/** A backslash in a path, as is or percent-encoded. */
const BACKSLASH = /\\|%5c/i

/** How many Host lines the request carried (Node's `headers.host` keeps only the first). */
function hostLineCount(rawHeaders: readonly string[]): number {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'host') count++
  }
  return count
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

function fail(
  ctx: RequestContext,
  code: ErrorCode,
  message?: string,
  detail?: LlmErrorDetail,
): void {
  ctx.errorCode = code
  // Told to go on first, as Node's default would have, unless refused for the size it declared.
  if (code !== 'LB_ERR_BODY_TOO_LARGE') continueRequest(ctx)
  const isLlm = ctx.route?.config.gateway === 'models'
  const apiUrl = ctx.apiUrl ?? ctx.url
  const format = isLlm ? llmErrorFormat(apiUrl, detail, ctx.req.headers) : undefined
  // The endpoint that failed (refused, reset, timed out) is what debug headers are wanted for most.
  const debug =
    ctx.route?.config.debugHeaders === true && ctx.endpoint !== undefined
      ? { 'x-aya-endpoint': ctx.endpoint.id }
      : undefined
  const headers = {
    ...(isLlm ? llmErrorHeaders(apiUrl, ctx.req.headers, ctx.id) : undefined),
    ...debug,
    ...detail?.headers,
  }
  const reply = sendLocalReply(ctx.res, code, { requestId: ctx.id, message, format, headers })
  ctx.status = reply.status
  ctx.bytesOut += reply.bodyBytes
}

/** Replies with the error's code, and keeps why the upstream failed for the access log. */
function failWith(ctx: RequestContext, error: ProxyError): void {
  ctx.errorDetail = upstreamErrorDetail(error)
  fail(ctx, error.code)
}

/**
 * Tells a client that awaits `100 Continue` to send its body. Sent before Aya reads the body or
 * answers otherwise, as Node's default sends it before the handler runs; held back only from a
 * 413 for a declared length over the limit, so that the client sends none of it.
 */
function continueRequest(ctx: RequestContext): void {
  if (!ctx.awaitingContinue) return
  ctx.awaitingContinue = false
  ctx.res.writeContinue()
}

function finish(ctx: RequestContext, deps: HttpProxyDeps): void {
  ctx.durationMs = deps.clock.now() - ctx.startMs
  deps.onRequestDone(ctx)
}

/** What one listener's requests are judged by, rebuilt when the config is. */
interface ListenerSettings {
  readonly listener: ListenerConfig
  readonly resolveClient: ReturnType<typeof createClientAddressResolver>
  readonly isTrustedPeer: ReturnType<typeof createTrustedProxyMatcher>
}
