import {
  type CompletionPrompt,
  completionPrompt,
  contentText,
  flattenChat,
  type MediaCount,
  promptEmbedsPrompt,
} from './chat-template.ts'
import type { LlmApi, LlmRequest } from './llm-request.ts'
import { estimateTokens } from './token-estimate.ts'

/** The fields routing needs from a request body; everything else passes through untouched. */
export interface ParsedLlmBody {
  readonly model: string
  readonly stream: boolean
  readonly maxTokens: number | undefined
  /**
   * Sequences generated: `n` (or `best_of` where larger), times the prompts of a legacy
   * completions batch; undefined means 1.
   */
  readonly sequences?: number | undefined
  readonly promptText: string
  /** The prompt's exact length in tokens, when the client sent token ids instead of text. */
  readonly promptTokens: number | undefined
  /** Images, audio, video and files among the prompt's parts. */
  readonly mediaParts?: number | undefined
  /** Part of the prompt is held upstream (LlmRequest.promptHeldUpstream). */
  readonly promptHeldUpstream?: boolean | undefined
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

/** What OpenAI and vLLM generate for `/v1/completions` without `max_tokens`. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16

/**
 * Prompt tokens assumed for one image, audio clip, video or file: its real size depends on the
 * model and the media (GPT-4o: 85–1,105 for an image; Claude about 1,600 at most; Qwen2-VL about
 * 1,400 for 1024×1024), none of which the router sees.
 */
export const MEDIA_PART_TOKENS = 1000

/** Longest model name accepted; Hugging Face repository ids are at most 96 characters. */
export const MAX_MODEL_CHARS = 256

/** The most sequences one request may ask for (`n`, `best_of`), as OpenAI allows. */
const MAX_SEQUENCES = 128

type LlmParseFailure = Extract<LlmParseResult, { readonly ok: false }>

const fail = (message: string, param?: string): LlmParseFailure => ({ ok: false, message, param })

/**
 * Validates and extracts a body of any supported API. Errors name the offending parameter, in the
 * wording the API's own servers use where it matters to SDKs.
 */
export function parseLlmBody(api: LlmApi, json: unknown): LlmParseResult {
  const model = modelOf(api, json)
  if (typeof model !== 'string') return model
  const body = json as Record<string, unknown> & { readonly model: string }
  const media: MediaCount = { parts: 0 }
  const prompt = promptOf(api, body, media)
  if ('ok' in prompt) return prompt
  const maxTokens = maxTokensOf(api, body)
  if (typeof maxTokens === 'object') return maxTokens
  const perPrompt = sequencesOf(api, body)
  if (typeof perPrompt === 'object') return perPrompt
  const sequences = perPrompt * (api === 'openai.completions' ? (prompt.prompts ?? 1) : 1)
  const mediaParts = media.parts
  return {
    ok: true,
    value: {
      model: body.model,
      stream: body.stream === true,
      maxTokens,
      ...(sequences > 1 ? { sequences } : {}),
      promptText: prompt.text,
      promptTokens: prompt.tokens,
      ...(mediaParts > 0 ? { mediaParts } : {}),
      ...(api === 'openai.responses' && holdsPromptUpstream(body)
        ? { promptHeldUpstream: true }
        : {}),
    },
  }
}

/**
 * A Responses request whose prompt starts with turns the upstream stored: a previous response, a
 * conversation, or a stored prompt template. Its `input` is only what comes after them.
 */
function holdsPromptUpstream(body: Record<string, unknown>): boolean {
  return (
    (body.previous_response_id !== undefined && body.previous_response_id !== null) ||
    (body.conversation !== undefined && body.conversation !== null) ||
    (body.prompt !== undefined && body.prompt !== null)
  )
}

/** The request's prompt; the chat flatteners count its media parts into `media`. */
function promptOf(
  api: LlmApi,
  body: Record<string, unknown>,
  media: MediaCount,
): CompletionPrompt | LlmParseResult {
  switch (api) {
    case 'openai.chat':
      if (!Array.isArray(body.messages))
        return fail("'messages' must be an array of chat messages", 'messages')
      return textPrompt(flattenChat(body.messages, undefined, body.tools ?? body.functions, media))
    case 'openai.completions':
      return completionInput(body, 'prompt', promptEmbedsPrompt(body.prompt_embeds, media))
    case 'openai.embeddings':
      // vLLM embeds a conversation too (`messages` instead of `input`, for multimodal embedding
      // models), rendered through the chat template as a chat request is.
      if ((body.input === undefined || body.input === null) && Array.isArray(body.messages))
        return textPrompt(flattenChat(body.messages, undefined, undefined, media))
      return completionInput(body, 'input')
    case 'openai.responses': {
      const instructions = typeof body.instructions === 'string' ? body.instructions : undefined
      // `input` is optional: a turn may continue `previous_response_id` or a stored `prompt`.
      const input = body.input ?? []
      if (typeof input === 'string')
        return textPrompt(
          flattenChat([{ role: 'user', content: input }], instructions, body.tools, media),
        )
      if (!Array.isArray(input))
        return fail("'input' must be a string or an array of input items", 'input')
      return textPrompt(flattenChat(input, instructions, body.tools, media))
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
      return textPrompt(
        flattenChat(
          body.messages,
          body.system === undefined ? undefined : contentText(body.system, media),
          body.tools,
          media,
        ),
      )
    }
  }
}

/**
 * A completions `prompt` or embeddings `input`: a string or a list (of strings, token ids or
 * lists of them). A null is as missing, and a number or an object is no prompt at all: either
 * would otherwise be placed and charged as an empty prompt, only for the engine to refuse it.
 * A completions request may carry vLLM's `prompt_embeds` (`embeds`) instead, or as well.
 */
function completionInput(
  body: Record<string, unknown>,
  name: 'prompt' | 'input',
  embeds?: CompletionPrompt,
): CompletionPrompt | LlmParseResult {
  const value = body[name]
  if (value === undefined || value === null) {
    return embeds ?? fail(`'${name}' is required`, name)
  }
  if (typeof value !== 'string' && !Array.isArray(value))
    return fail(`'${name}' must be a string or an array`, name)
  const prompt = completionPrompt(value)
  if (embeds === undefined) return prompt
  // vLLM runs the embeddings' prompts first, then the text's: one batch.
  return {
    text: `${embeds.text}\n${prompt.text}`,
    tokens: undefined,
    prompts: (embeds.prompts ?? 1) + (prompt.prompts ?? 1),
  }
}

/** A prompt given as text: its token count is estimated, never exact. */
function textPrompt(text: string): CompletionPrompt {
  return { text, tokens: undefined }
}

function maxTokensOf(
  api: LlmApi,
  body: Record<string, unknown>,
): number | undefined | LlmParseResult {
  if (api === 'openai.embeddings') return 0
  // Chat takes `max_completion_tokens or max_tokens`, as vLLM does: a null one defers to the other.
  const name =
    api === 'openai.responses'
      ? 'max_output_tokens'
      : api === 'openai.chat' && body.max_completion_tokens != null
        ? 'max_completion_tokens'
        : 'max_tokens'
  const raw = body[name]
  // Legacy completions default to 16 when the field is absent (OpenAI and vLLM); an explicit null
  // means no cap but the context window in vLLM, so it stays unknown here.
  if (raw === undefined && api === 'openai.completions') return COMPLETIONS_DEFAULT_MAX_TOKENS
  if (raw === undefined || raw === null) {
    return api === 'anthropic.messages'
      ? fail('max_tokens: Field required', 'max_tokens')
      : undefined
  }
  // A safe integer: 1e308 is an integer to JavaScript, but no engine's window, and past 2^53 the
  // value forwarded would not be the one the client wrote.
  if (!Number.isSafeInteger(raw) || (raw as number) < 1)
    return fail(`'${name}' must be a positive integer`, name)
  return raw as number
}

/**
 * How many sequences the engine generates for the prompt: OpenAI's `n` on chat and completions,
 * and on completions `best_of`, which generates that many and returns the best `n`.
 */
function sequencesOf(api: LlmApi, body: Record<string, unknown>): number | LlmParseResult {
  if (api !== 'openai.chat' && api !== 'openai.completions') return 1
  let sequences = 1
  for (const name of api === 'openai.completions' ? ['n', 'best_of'] : ['n']) {
    const raw = body[name]
    if (raw === undefined || raw === null) continue
    if (!Number.isInteger(raw) || (raw as number) < 1)
      return fail(`'${name}' must be a positive integer`, name)
    // OpenAI's own bound: a larger one would be charged KV no engine holds.
    if ((raw as number) > MAX_SEQUENCES)
      return fail(`'${name}' must be at most ${MAX_SEQUENCES}`, name)
    sequences = Math.max(sequences, raw as number)
  }
  return sequences
}

/**
 * The body's `model`, checked: the body is an object and names a model of at most
 * MAX_MODEL_CHARS characters. Errors are worded as the API's own servers word them.
 */
export function modelOf(api: LlmApi, json: unknown): string | LlmParseFailure {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return fail('the request body must be a JSON object')
  }
  const { model } = json as { model?: unknown }
  // Sent but not a string, it is mistyped rather than missing: saying "provide a model" to a
  // client that sent one sends its author looking for the wrong mistake.
  if (model !== undefined && model !== null && typeof model !== 'string') {
    return fail(
      api === 'anthropic.messages'
        ? 'model: Input should be a valid string'
        : `'model' must be a string, got ${Array.isArray(model) ? 'an array' : `a ${typeof model === 'object' ? 'JSON object' : typeof model}`}`,
      'model',
    )
  }
  if (typeof model !== 'string' || model === '') {
    return fail(
      api === 'anthropic.messages' ? 'model: Field required' : 'you must provide a model parameter',
      'model',
    )
  }
  // A wildcard entry serves whatever name a client sends, and per-model state (calibration,
  // output sketches) is keyed by it: megabyte names would be kept, several copies each.
  if (model.length > MAX_MODEL_CHARS) {
    return fail(`'model' must be at most ${MAX_MODEL_CHARS} characters`, 'model')
  }
  return model
}

/** The LlmRequest policies see, built the same way by the proxy and by the virtual-time bench. */
export function toLlmRequest(
  api: LlmApi,
  parsed: ParsedLlmBody,
  servedModel: string,
  sessionKey: string | undefined,
  /** Counts a text prompt's tokens for a model (a calibrated counter); a rough estimate when absent. */
  countTokens?: ((model: string, text: string) => number) | undefined,
  routeKey = '',
): LlmRequest {
  return {
    api,
    model: parsed.model,
    servedModel,
    stream: parsed.stream,
    maxTokens: parsed.maxTokens,
    ...(parsed.sequences === undefined ? {} : { sequences: parsed.sequences }),
    promptText: parsed.promptText,
    // Token ids are counted exactly; a counter's estimate of their text form would be meaningless.
    promptTokens:
      parsed.promptTokens ??
      (countTokens?.(servedModel, parsed.promptText) ?? estimateTokens(parsed.promptText)) +
        (parsed.mediaParts ?? 0) * MEDIA_PART_TOKENS,
    promptTokensExact: parsed.promptTokens !== undefined,
    ...(parsed.mediaParts === undefined ? {} : { mediaParts: parsed.mediaParts }),
    ...(parsed.promptHeldUpstream === true ? { promptHeldUpstream: true } : {}),
    sessionKey,
    routeKey,
  }
}
