import type { ServerResponse } from 'node:http'
import { anthropicErrorBody } from '../llm/anthropic-error.ts'
import { llmApiFor, parseLlmBody, toLlmRequest } from '../llm/llm-body.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { ModelRegistry } from '../llm/model-registry.ts'
import { openAiErrorBody } from '../llm/openai-error.ts'
import { hashText53 } from '../util/text-hash.ts'
import { ProxyError } from './errors.ts'
import { findApiKey } from './key-selector.ts'
import type { ErrorBodyFormat } from './local-reply.ts'
import { readBodyBounded } from './read-body.ts'
import type { RequestContext } from './request-context.ts'

/** What an LLM route needs to forward: the group, the (possibly rewritten) body, the parse. */
export interface GatewayDispatch {
  readonly kind: 'dispatch'
  readonly upstream: string
  readonly body: Buffer
  readonly llm: LlmRequest
}

export type GatewayOutcome =
  | GatewayDispatch
  | { readonly kind: 'answered' }
  | {
      readonly kind: 'error'
      readonly error: ProxyError
      readonly param?: string | undefined
      readonly openAiCode?: string | undefined
    }

export interface ModelsGatewayOptions {
  readonly registry: ModelRegistry
  readonly maxBodyBytes: number
  readonly sessionHeader: string
  /** Counts the prompt's tokens for the served model; a rough estimate when absent. */
  readonly countTokens?: ((model: string, text: string) => number) | undefined
}

/**
 * The `gateway: models` phase of an LLM route: answers `GET /v1/models`, reads and parses the body
 * once with a bounded read, and maps the requested model to an upstream group through the one
 * model registry. Policies receive the parsed request; nothing downstream parses the body again.
 */
export async function runModelsGateway(
  ctx: RequestContext,
  path: string,
  options: ModelsGatewayOptions,
): Promise<GatewayOutcome> {
  if (ctx.method === 'GET' && path === '/v1/models') {
    answerModelList(ctx.res, options.registry, ctx.id)
    ctx.status = 200
    return { kind: 'answered' }
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
  const raw = await readBodyBounded(ctx.req, options.maxBodyBytes)
  ctx.bytesIn = raw.length
  let json: unknown
  try {
    json = JSON.parse(raw.toString('utf8'))
  } catch {
    return { kind: 'error', error: badRequest('the request body is not valid JSON') }
  }
  const parsed = parseLlmBody(api, json)
  if (!parsed.ok) return { kind: 'error', error: badRequest(parsed.message), param: parsed.param }
  const deployment = options.registry.resolve(parsed.value.model)
  if (!deployment) {
    const known = options.registry.names().join(', ')
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
      ? raw
      : Buffer.from(
          JSON.stringify({ ...(json as Record<string, unknown>), model: deployment.servedModel }),
        )
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
    llm: toLlmRequest(
      api,
      parsed.value,
      deployment.servedModel,
      sessionKey || undefined,
      options.countTokens?.(deployment.servedModel, parsed.value.promptText),
      ctx.route?.name,
    ),
  }
}

function badRequest(message: string): ProxyError {
  return new ProxyError('LB_ERR_BAD_REQUEST', { source: 'downstream', message })
}

function answerModelList(res: ServerResponse, registry: ModelRegistry, requestId: string): void {
  const body = JSON.stringify({
    object: 'list',
    data: registry.names().map((id) => ({ id, object: 'model', created: 0, owned_by: 'aya' })),
  })
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  })
  res.end(body)
}

/**
 * LLM routes answer in their API's own error shape so SDKs raise their usual exceptions: Anthropic's
 * for `/v1/messages`, OpenAI's for everything else (including paths Aya does not know).
 */
export function llmErrorFormat(
  url: string,
  detail:
    | { readonly param?: string | undefined; readonly openAiCode?: string | undefined }
    | undefined,
): ErrorBodyFormat {
  const path = url.split('?', 1)[0]
  if (path === '/v1/messages') return (code, info) => anthropicErrorBody(code, info.message)
  return (code, info) =>
    openAiErrorBody(code, {
      message: info.message,
      param: detail?.param,
      openAiCode: detail?.openAiCode,
    })
}
