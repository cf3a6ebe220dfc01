import type { IncomingHttpHeaders } from 'node:http'
import { anthropicErrorBody } from '../llm/anthropic-error.ts'
import { llmApiFor, parseLlmBody, toLlmRequest } from '../llm/llm-body.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { ModelRegistry } from '../llm/model-registry.ts'
import { openAiErrorBody } from '../llm/openai-error.ts'
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
export interface GatewayDispatch {
  readonly kind: 'dispatch'
  readonly upstream: string
  readonly body: Buffer
  readonly llm: LlmRequest
  /**
   * The client's body carried a Content-Encoding that `body` no longer has: the request must go
   * upstream without that header (and with `body`'s length).
   */
  readonly contentDecoded: boolean
}

export type GatewayOutcome =
  | GatewayDispatch
  | { readonly kind: 'answered' }
  | ({ readonly kind: 'error'; readonly error: ProxyError } & LlmErrorDetail)

/** What picks and fills an LLM route's error body, beyond the code and message. */
export interface LlmErrorDetail {
  readonly param?: string | undefined
  readonly openAiCode?: string | undefined
  /** Set by the gateway when the request's headers (not only its path) say Anthropic. */
  readonly errorShape?: 'anthropic' | undefined
}

export interface ModelsGatewayOptions {
  readonly registry: ModelRegistry
  readonly maxBodyBytes: number
  readonly sessionHeader: string
  /** Counts the prompt's tokens for the served model; a rough estimate when absent. */
  readonly countTokens?: ((model: string, text: string) => number) | undefined
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf])

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
  const anthropic = isAnthropicRequest(path, ctx.req.headers)
  const outcome = await gateway(ctx, path, options, anthropic)
  return outcome.kind === 'error' && anthropic ? { ...outcome, errorShape: 'anthropic' } : outcome
}

async function gateway(
  ctx: RequestContext,
  path: string,
  options: ModelsGatewayOptions,
  anthropic: boolean,
): Promise<GatewayOutcome> {
  if (ctx.method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) {
    return answerModels(ctx, path, options.registry, anthropic)
  }
  const api = llmApiFor(ctx.method, path)
  if (!api) {
    return {
      kind: 'error',
      error: new ProxyError('LB_ERR_NO_ROUTE', {
        source: 'downstream',
        message: `unknown API path ${ctx.method} ${path}`,
      }),
      openAiCode: 'unknown_url',
    }
  }
  let raw: Buffer
  let decoded: Buffer
  try {
    raw = await readBodyBounded(ctx.req, options.maxBodyBytes)
    ctx.bytesIn = raw.length
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
  const json = hasBom(decoded) ? decoded.subarray(UTF8_BOM.length) : decoded
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch {
    return { kind: 'error', error: badRequest('the request body is not valid JSON') }
  }
  const parsed = parseLlmBody(api, value)
  if (!parsed.ok) return { kind: 'error', error: badRequest(parsed.message), param: parsed.param }
  const deployment = options.registry.resolve(parsed.value.model)
  if (!deployment) {
    const known = [...options.registry.names(), ...options.registry.patterns()].sort().join(', ')
    return {
      kind: 'error',
      error: new ProxyError('LB_ERR_UNKNOWN_MODEL', {
        source: 'downstream',
        message: `The model '${parsed.value.model}' does not exist. Known models: ${known}`,
      }),
      param: 'model',
      openAiCode: 'model_not_found',
    }
  }
  const body =
    deployment.servedModel === parsed.value.model
      ? json
      : (rewriteModelField(json, deployment.servedModel) ??
        // Unreachable for a body that parsed with a string model; kept so a scanner gap degrades.
        Buffer.from(
          JSON.stringify({ ...(value as Record<string, unknown>), model: deployment.servedModel }),
        ))
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
    contentDecoded: decoded !== raw,
    llm: toLlmRequest(
      api,
      parsed.value,
      deployment.servedModel,
      sessionKey || undefined,
      // Token-id prompts carry their exact count; counting their text form would be noise.
      parsed.value.promptTokens ??
        options.countTokens?.(deployment.servedModel, parsed.value.promptText),
      ctx.route?.name,
    ),
  }
}

function badRequest(message: string): ProxyError {
  return new ProxyError('LB_ERR_BAD_REQUEST', { source: 'downstream', message })
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value
}

function hasBom(body: Buffer): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf
}

function answerModels(
  ctx: RequestContext,
  path: string,
  registry: ModelRegistry,
  anthropic: boolean,
): GatewayOutcome {
  const queryAt = ctx.url.indexOf('?')
  const query = new URLSearchParams(queryAt < 0 ? '' : ctx.url.slice(queryAt + 1))
  const reply = modelsEndpointReply(registry, path, query, anthropic)
  if (!reply.found) {
    return {
      kind: 'error',
      error: new ProxyError('LB_ERR_UNKNOWN_MODEL', {
        source: 'downstream',
        message: `The model '${reply.id}' does not exist`,
      }),
      param: 'model',
      openAiCode: 'model_not_found',
    }
  }
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(reply.body),
    'x-request-id': ctx.id,
  })
  ctx.res.end(reply.body)
  ctx.status = 200
  return { kind: 'answered' }
}

/** Anthropic's SDKs send `anthropic-version` on every request; its API lives under /v1/messages. */
function isAnthropicRequest(path: string, headers: IncomingHttpHeaders | undefined): boolean {
  return (
    path === '/v1/messages' ||
    path.startsWith('/v1/messages/') ||
    headers?.['anthropic-version'] !== undefined
  )
}

/**
 * LLM routes answer in their API's own error shape so SDKs raise their usual exceptions:
 * Anthropic's for `/v1/messages` and everything under it, and for any request carrying
 * `anthropic-version` (pass the request's headers, or a detail the gateway marked); OpenAI's for
 * everything else, including paths Aya does not know.
 */
export function llmErrorFormat(
  url: string,
  detail: LlmErrorDetail | undefined,
  headers?: IncomingHttpHeaders,
): ErrorBodyFormat {
  const path = url.split('?', 1)[0] ?? url
  if (detail?.errorShape === 'anthropic' || isAnthropicRequest(path, headers)) {
    return (code, info) => anthropicErrorBody(code, info.message)
  }
  return (code, info) =>
    openAiErrorBody(code, {
      message: info.message,
      param: detail?.param,
      openAiCode: detail?.openAiCode,
    })
}
