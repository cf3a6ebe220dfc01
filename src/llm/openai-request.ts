import { completionPrompt, flattenChat } from './chat-template.ts'
import type { LlmApi, LlmRequest } from './llm-request.ts'
import { estimateTokens } from './token-estimate.ts'

export interface ParsedOpenAiBody {
  readonly model: string
  readonly stream: boolean
  readonly maxTokens: number | undefined
  readonly promptText: string
}

export type OpenAiParseResult =
  | { readonly ok: true; readonly value: ParsedOpenAiBody }
  | { readonly ok: false; readonly message: string; readonly param: string | undefined }

/** Which OpenAI API a path is, or undefined when it is not one Aya parses. */
export function openAiApiFor(method: string, path: string): LlmApi | undefined {
  if (method !== 'POST') return undefined
  if (path === '/v1/chat/completions') return 'openai.chat'
  if (path === '/v1/completions') return 'openai.completions'
  return undefined
}

/** Validates the fields routing needs; everything else passes through to the upstream untouched. */
export function parseOpenAiBody(api: LlmApi, json: unknown): OpenAiParseResult {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { ok: false, message: 'the request body must be a JSON object', param: undefined }
  }
  const body = json as Record<string, unknown>
  if (typeof body.model !== 'string' || body.model === '') {
    return { ok: false, message: 'you must provide a model parameter', param: 'model' }
  }
  let promptText: string
  if (api === 'openai.chat') {
    if (!Array.isArray(body.messages)) {
      return {
        ok: false,
        message: "'messages' must be an array of chat messages",
        param: 'messages',
      }
    }
    promptText = flattenChat(body.messages)
  } else {
    if (body.prompt === undefined)
      return { ok: false, message: "'prompt' is required", param: 'prompt' }
    promptText = completionPrompt(body.prompt)
  }
  const rawMax = body.max_completion_tokens ?? body.max_tokens
  if (
    rawMax !== undefined &&
    rawMax !== null &&
    (!Number.isInteger(rawMax) || (rawMax as number) < 1)
  ) {
    return { ok: false, message: "'max_tokens' must be a positive integer", param: 'max_tokens' }
  }
  return {
    ok: true,
    value: {
      model: body.model,
      stream: body.stream === true,
      maxTokens: typeof rawMax === 'number' ? rawMax : undefined,
      promptText,
    },
  }
}

/** The LlmRequest policies see, built the same way by the proxy and by the virtual-time bench. */
export function toLlmRequest(
  api: LlmApi,
  parsed: ParsedOpenAiBody,
  servedModel: string,
  sessionKey: string | undefined,
): LlmRequest {
  return {
    api,
    model: parsed.model,
    servedModel,
    stream: parsed.stream,
    maxTokens: parsed.maxTokens,
    promptText: parsed.promptText,
    promptTokens: estimateTokens(parsed.promptText),
    sessionKey,
  }
}
