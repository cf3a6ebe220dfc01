import { completionPrompt, contentText, flattenChat } from './chat-template.ts'
import type { LlmApi, LlmRequest } from './llm-request.ts'
import { estimateTokens } from './token-estimate.ts'

/** The fields routing needs from a request body; everything else passes through untouched. */
export interface ParsedLlmBody {
  readonly model: string
  readonly stream: boolean
  readonly maxTokens: number | undefined
  readonly promptText: string
}

export type LlmParseResult =
  | { readonly ok: true; readonly value: ParsedLlmBody }
  | { readonly ok: false; readonly message: string; readonly param: string | undefined }

const API_PATHS: ReadonlyMap<string, LlmApi> = new Map([
  ['/v1/chat/completions', 'openai.chat'],
  ['/v1/completions', 'openai.completions'],
  ['/v1/responses', 'openai.responses'],
  ['/v1/embeddings', 'openai.embeddings'],
  ['/v1/messages', 'anthropic.messages'],
])

/** Which API a request is, or undefined when it is not one Aya parses. */
export function llmApiFor(method: string, path: string): LlmApi | undefined {
  return method === 'POST' ? API_PATHS.get(path) : undefined
}

const fail = (message: string, param?: string): LlmParseResult => ({ ok: false, message, param })

/**
 * Validates and extracts a body of any supported API. Errors name the offending parameter, in the
 * wording the API's own servers use where it matters to SDKs.
 */
export function parseLlmBody(api: LlmApi, json: unknown): LlmParseResult {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return fail('the request body must be a JSON object')
  }
  const body = json as Record<string, unknown>
  if (typeof body.model !== 'string' || body.model === '') {
    return fail(
      api === 'anthropic.messages' ? 'model: Field required' : 'you must provide a model parameter',
      'model',
    )
  }
  const prompt = promptOf(api, body)
  if (typeof prompt !== 'string') return prompt
  const maxTokens = maxTokensOf(api, body)
  if (typeof maxTokens === 'object') return maxTokens
  return {
    ok: true,
    value: { model: body.model, stream: body.stream === true, maxTokens, promptText: prompt },
  }
}

function promptOf(api: LlmApi, body: Record<string, unknown>): string | LlmParseResult {
  switch (api) {
    case 'openai.chat':
      if (!Array.isArray(body.messages))
        return fail("'messages' must be an array of chat messages", 'messages')
      return flattenChat(body.messages)
    case 'openai.completions':
      if (body.prompt === undefined) return fail("'prompt' is required", 'prompt')
      return completionPrompt(body.prompt)
    case 'openai.embeddings':
      if (body.input === undefined) return fail("'input' is required", 'input')
      return completionPrompt(body.input)
    case 'openai.responses': {
      const instructions = typeof body.instructions === 'string' ? body.instructions : undefined
      if (typeof body.input === 'string')
        return flattenChat([{ role: 'user', content: body.input }], instructions)
      if (!Array.isArray(body.input))
        return fail("'input' must be a string or an array of input items", 'input')
      return flattenChat(body.input, instructions)
    }
    case 'anthropic.messages': {
      if (!Array.isArray(body.messages)) return fail('messages: Field required', 'messages')
      if (
        body.system !== undefined &&
        typeof body.system !== 'string' &&
        !Array.isArray(body.system)
      ) {
        return fail('system: Input should be a valid string or a list of text blocks', 'system')
      }
      return flattenChat(
        body.messages,
        body.system === undefined ? undefined : contentText(body.system),
      )
    }
  }
}

function maxTokensOf(
  api: LlmApi,
  body: Record<string, unknown>,
): number | undefined | LlmParseResult {
  if (api === 'openai.embeddings') return 0
  const name =
    api === 'openai.responses'
      ? 'max_output_tokens'
      : api === 'openai.chat' && body.max_completion_tokens !== undefined
        ? 'max_completion_tokens'
        : 'max_tokens'
  const raw = body[name]
  if (raw === undefined || raw === null) {
    return api === 'anthropic.messages'
      ? fail('max_tokens: Field required', 'max_tokens')
      : undefined
  }
  if (!Number.isInteger(raw) || (raw as number) < 1)
    return fail(`'${name}' must be a positive integer`, name)
  return raw as number
}

/** The LlmRequest policies see, built the same way by the proxy and by the virtual-time bench. */
export function toLlmRequest(
  api: LlmApi,
  parsed: ParsedLlmBody,
  servedModel: string,
  sessionKey: string | undefined,
  promptTokens: number = estimateTokens(parsed.promptText),
  routeKey = '',
): LlmRequest {
  return {
    api,
    model: parsed.model,
    servedModel,
    stream: parsed.stream,
    maxTokens: parsed.maxTokens,
    promptText: parsed.promptText,
    promptTokens,
    sessionKey,
    routeKey,
  }
}
