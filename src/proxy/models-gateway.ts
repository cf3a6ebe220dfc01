import type { IncomingHttpHeaders } from 'node:http'
import { anthropicErrorBody } from '../llm/anthropic-error.ts'
import { llmApiFor, modelOf, parseLlmBody, toLlmRequest } from '../llm/llm-body.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { ModelDeployment, ModelRegistry } from '../llm/model-registry.ts'
import { openAiErrorBody } from '../llm/openai-error.ts'
import type { Clock } from '../util/clock.ts'
import { hashText53 } from '../util/text-hash.ts'
import { decodeContentEncoding } from './decode-content-encoding.ts'
import { isProxyError, ProxyError } from './errors.ts'
import { findApiKey } from './key-selector.ts'
import type { ErrorBodyFormat } from './local-reply.ts'
import { modelsEndpointReply } from './models-endpoint.ts'
import { readBodyBounded } from './read-body.ts'
import type { RequestContext } from './request-context.ts'
import { rewriteModelField } from './rewrite-model-field.ts'

/** What an LLM route needs to forward: the group, the (possibly rewritten) body, the parse. */
interface GatewayDispatch {
  readonly kind: 'dispatch'
  readonly upstream: string
  /** Decoded (no Content-Encoding applies to it any more), without a BOM, model rewritten. */
  readonly body: Buffer
  /** The request as policies see it; undefined for one that generates nothing (count_tokens). */
  readonly llm: LlmRequest | undefined
  /** The registry entry the model resolved to (`ModelDeployment.canonical`). */
  readonly modelEntry: string
}

export type GatewayOutcome =
  | GatewayDispatch
  | { readonly kind: 'answered' }
  | ({ readonly kind: 'error'; readonly error: ProxyError } & LlmErrorDetail)

/** What picks and fills an LLM route's error reply, beyond the code and message. */
export interface LlmErrorDetail {
  readonly param?: string | undefined
  readonly openAiCode?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

export interface ModelsGatewayOptions {
  readonly registry: ModelRegistry
  readonly clock: Clock
  readonly maxBodyBytes: number
  readonly sessionHeader: string
  /** Counts the prompt's tokens for the served model; a rough estimate when absent. */
  readonly countTokens?: ((model: string, text: string) => number) | undefined
}

/** The body of an LLM request may pause this long between pieces (nginx's client_body_timeout). */
const BODY_IDLE_MS = 60_000
/** and take this long in all: 16 MiB at 60 kB/s. */
const BODY_DEADLINE_MS = 300_000

/** A UTF-8 byte order mark: compared byte by byte, so the check allocates nothing. */
const startsWithBom = (bytes: Buffer): boolean =>
  bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf

/**
 * The `gateway: models` phase of an LLM route: answers `GET /v1/models` and `GET /v1/models/{id}`,
 * reads and parses the body once with a bounded read, and maps the requested model to an upstream
 * group through the one model registry. Policies receive the parsed request; nothing downstream
 * parses the body again.
 */
export async function runModelsGateway(
  ctx: RequestContext,
  path: string,
  options: ModelsGatewayOptions,
): Promise<GatewayOutcome> {
  if (
    (ctx.method === 'GET' || ctx.method === 'HEAD') &&
    (path === '/v1/models' || path.startsWith('/v1/models/'))
  ) {
    return answerModels(ctx, path, options.registry)
  }
  // Anthropic's token counting (Claude Code sends it): routed by model to the deployment, which
  // counts. It generates nothing, so the policy places it as plain traffic, with no LLM cost; it
  // still waits its turn in the upstream's admission queue like any request there.
  const isCountTokens = ctx.method === 'POST' && path === '/v1/messages/count_tokens'
  const api = isCountTokens ? 'anthropic.messages' : llmApiFor(ctx.method, path)
  if (!api) {
    const allow = allowedMethods(path)
    if (allow !== undefined) {
      return {
        kind: 'error',
        error: new ProxyError('LB_ERR_METHOD_NOT_ALLOWED', {
          source: 'downstream',
          message: `${path} does not serve ${ctx.method}; it serves ${allow}`,
        }),
        headers: { allow },
      }
    }
    return {
      kind: 'error',
      error: new ProxyError('LB_ERR_NO_ROUTE', {
        source: 'downstream',
        message: `unknown API path ${ctx.method} ${path}`,
      }),
      openAiCode: 'unknown_url',
    }
  }
  const { countTokens } = options
  let decoded: Buffer
  try {
    const raw = await readBodyBounded(
      ctx.req,
      {
        maxBodyBytes: options.maxBodyBytes,
        idleMs: BODY_IDLE_MS,
        deadlineMs: BODY_DEADLINE_MS,
        onBytes: (bytes) => {
          ctx.bytesIn += bytes
        },
      },
      options,
    )
    decoded = await decodeContentEncoding(
      raw,
      headerValue(ctx.req.headers['content-encoding']),
      options.maxBodyBytes,
    )
  } catch (error) {
    if (isProxyError(error)) return { kind: 'error', error }
    throw error
  }
  // A UTF-8 BOM is legal before JSON from some clients but not JSON itself; it is not forwarded.
  const json = startsWithBom(decoded) ? decoded.subarray(3) : decoded
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch {
    return { kind: 'error', error: badRequest('the request body is not valid JSON') }
  }
  if (isCountTokens) return countTokensDispatch(ctx, value, json, options.registry)
  let parsed: ReturnType<typeof parseLlmBody>
  try {
    parsed = parseLlmBody(api, value)
  } catch (error) {
    // JSON.parse takes any depth; flattening a prompt recurses, and a body nested thousands
    // deep (legal JSON, 40 kB) overflows the stack. That is the client's doing, not ours.
    if (error instanceof RangeError) {
      return { kind: 'error', error: badRequest('the request body is nested too deeply') }
    }
    throw error
  }
  if (!parsed.ok) return { kind: 'error', error: badRequest(parsed.message), param: parsed.param }
  ctx.requestedModel = parsed.value.model
  const routed = routeByModel(parsed.value.model, json, options.registry)
  if (routed.kind !== 'routed') return routed
  const { deployment, body } = routed
  const session = ctx.req.headers[options.sessionHeader]
  const sessionId = Array.isArray(session) ? session[0] : session
  // Session ids are the client's own: scoped by its API key (hashed), two tenants' "1" differ.
  const apiKey = sessionId ? findApiKey(ctx.req.headers) : undefined
  const sessionKey =
    apiKey === undefined ? sessionId : `${hashText53(apiKey).toString(36)}\u0000${sessionId}`
  return {
    kind: 'dispatch',
    upstream: deployment.upstream,
    body,
    modelEntry: deployment.canonical,
    llm: toLlmRequest(
      api,
      parsed.value,
      deployment.servedModel,
      sessionKey || undefined,
      countTokens,
      ctx.route?.name,
    ),
  }
}

/** The deployment a model resolves to, and the body with the served model's name in it. */
function routeByModel(
  model: string,
  json: Buffer,
  registry: ModelRegistry,
):
  | { readonly kind: 'routed'; readonly deployment: ModelDeployment; readonly body: Buffer }
  | GatewayOutcome {
  const deployment = registry.resolve(model)
  if (!deployment) return unknownModel(model, registry)
  const body =
    deployment.servedModel === model ? json : rewriteModelField(json, deployment.servedModel)
  // A body that parsed with a string model always has one to rewrite: a miss is a scanner bug, and
  // re-serialising instead would change what the client sent.
  if (body === undefined) {
    return {
      kind: 'error',
      error: new ProxyError('LB_ERR_INTERNAL', {
        source: 'internal',
        message: 'the model name could not be rewritten in the request body',
      }),
    }
  }
  return { kind: 'routed', deployment, body }
}

/** `POST /v1/messages/count_tokens`: routed by `model`, with no LLM request for the policies. */
function countTokensDispatch(
  ctx: RequestContext,
  value: unknown,
  json: Buffer,
  registry: ModelRegistry,
): GatewayOutcome {
  const model = modelOf('anthropic.messages', value)
  if (typeof model !== 'string') {
    return { kind: 'error', error: badRequest(model.message), param: model.param }
  }
  ctx.requestedModel = model
  const routed = routeByModel(model, json, registry)
  if (routed.kind !== 'routed') return routed
  return {
    kind: 'dispatch',
    upstream: routed.deployment.upstream,
    body: routed.body,
    modelEntry: routed.deployment.canonical,
    llm: undefined,
  }
}

/**
 * The methods an API path serves, for the `Allow` of a 405 (RFC 9110 §15.5.6); undefined for a
 * path no API has. Aya has no CORS support, so OPTIONS is not among them.
 */
function allowedMethods(path: string): string | undefined {
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return 'GET, HEAD'
  if (path === '/v1/messages/count_tokens' || llmApiFor('POST', path) !== undefined) return 'POST'
  return undefined
}

function badRequest(message: string): ProxyError {
  return new ProxyError('LB_ERR_BAD_REQUEST', { source: 'downstream', message })
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value
}

function answerModels(ctx: RequestContext, path: string, registry: ModelRegistry): GatewayOutcome {
  const url = ctx.apiUrl ?? ctx.url
  const query = new URLSearchParams(url.slice(path.length + 1))
  const reply = modelsEndpointReply(
    registry,
    path,
    query,
    isAnthropicRequest(path, ctx.req.headers),
  )
  if (reply.kind === 'unknown') return unknownModel(reply.id, registry)
  if (reply.kind === 'invalid') {
    return { kind: 'error', error: badRequest(reply.message), param: reply.param }
  }
  const bodyBytes = Buffer.byteLength(reply.body)
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': bodyBytes,
    'x-request-id': ctx.id,
  })
  ctx.res.end(reply.body)
  ctx.status = 200
  if (ctx.method !== 'HEAD') ctx.bytesOut += bodyBytes
  return { kind: 'answered' }
}

/** A 404 naming the model asked for and every model the registry knows. */
function unknownModel(model: string, registry: ModelRegistry): GatewayOutcome {
  const known = [...registry.names(), ...registry.patterns()].sort().join(', ')
  return {
    kind: 'error',
    error: new ProxyError('LB_ERR_UNKNOWN_MODEL', {
      source: 'downstream',
      message: `The model '${model}' does not exist. Known models: ${known}`,
    }),
    param: 'model',
    openAiCode: 'model_not_found',
  }
}

/** Anthropic's SDKs send `anthropic-version` on every request; its API lives under /v1/messages. */
function isAnthropicRequest(path: string, headers: IncomingHttpHeaders): boolean {
  return (
    path === '/v1/messages' ||
    path.startsWith('/v1/messages/') ||
    headers['anthropic-version'] !== undefined
  )
}

/**
 * Headers an LLM route's error reply carries beside Aya's own. Anthropic's SDKs read the request id
 * from `request-id` (their `APIError.requestID`), never `x-request-id`, so an Anthropic-shaped error
 * names it there too, as Anthropic's API does; OpenAI's read `x-request-id`, which every reply has.
 */
export function llmErrorHeaders(
  url: string,
  headers: IncomingHttpHeaders,
  requestId: string,
): Readonly<Record<string, string>> | undefined {
  return isAnthropicApi(url, headers) ? { 'request-id': requestId } : undefined
}

/** Whether a request to an LLM route (`url` as its API sees it, query and all) speaks Anthropic's API. */
export function isAnthropicApi(url: string, headers: IncomingHttpHeaders): boolean {
  return isAnthropicRequest(url.split('?', 1)[0] ?? url, headers)
}

/**
 * LLM routes answer in their API's own error shape so SDKs raise their usual exceptions:
 * Anthropic's for `/v1/messages` and everything under it, and for any request carrying
 * `anthropic-version`; OpenAI's for everything else, including paths Aya does not know.
 */
export function llmErrorFormat(
  url: string,
  detail: LlmErrorDetail | undefined,
  headers: IncomingHttpHeaders,
): ErrorBodyFormat {
  if (isAnthropicApi(url, headers)) {
    return (code, info) => anthropicErrorBody(code, info.message, info.requestId)
  }
  return (code, info) =>
    openAiErrorBody(code, {
      message: info.message,
      param: detail?.param,
      openAiCode: detail?.openAiCode,
    })
}
