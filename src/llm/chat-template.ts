import { hashText53 } from '../util/text-hash.ts'
import { tokenIdListsText, tokenIdsText } from './token-ids-text.ts'

/**
 * Flattens a chat request into the text an engine would prefill, deterministically: an optional
 * system prompt, the tool definitions, then every message in order as `<|role|>` then its content,
 * each followed by a newline. Conversations that share their first turns therefore share a text
 * prefix, which is what prefix caching keys on.
 *
 * Content is its text parts (`text`, `input_text`, `output_text`) plus every part that reaches the
 * engine's prompt through its chat template: tool calls (OpenAI `tool_calls`, Anthropic `tool_use`,
 * Responses `function_call`) as `<|tool_call|>name` and the arguments, tool results (OpenAI `tool`
 * messages, Anthropic `tool_result`, Responses `function_call_output`). Structured values are
 * written with JSON.stringify in the client's own key order, so the same request bytes always give
 * the same text and two requests that differ in a tool result never do. Images, audio, video and
 * files are written as a marker with a hash of their URL or bytes (`<|media image #…|>`): engines
 * key their prefix caches on the media too, so two prompts that differ only in an image share no
 * cache after it, and one that repeats an image keeps matching. A text document is its text.
 * Responses items of other types are written as bounded JSON, their base64 payloads as a length
 * and a hash (opaqueItemText).
 */
export function flattenChat(
  messages: readonly unknown[],
  system?: string,
  tools?: unknown,
  media: MediaCount = { parts: 0 },
): string {
  let out = system ? `<|system|>\n${system}\n` : ''
  // Chat templates render tool definitions into the system turn, ahead of the conversation.
  if (Array.isArray(tools) ? tools.length > 0 : tools !== undefined && tools !== null) {
    out += `<|tools|>\n${JSON.stringify(tools)}\n`
  }
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue
    out += turnText(message as Record<string, unknown>, media)
  }
  return out
}

/** One chat message or Responses input item as a `<|role|>` turn. */
function turnText(item: Record<string, unknown>, media: MediaCount): string {
  const type = item.type
  if (typeof type === 'string' && type !== 'message') {
    // Responses API items other than messages.
    switch (type) {
      case 'function_call':
        return `<|assistant|>\n${toolCallText(item.name, item.arguments)}\n`
      case 'function_call_output':
        return `<|tool|>\n${contentText(item.output, media)}\n`
      default:
        // Reasoning, hosted-tool calls and the like: opaque, but still part of what the upstream sees.
        return `<|${type}|>\n${opaqueItemText(item, media)}\n`
    }
  }
  const role = typeof item.role === 'string' ? item.role : 'user'
  let body = contentText(item.content, media)
  const calls: string[] = []
  if (Array.isArray(item.tool_calls)) {
    for (const call of item.tool_calls) {
      if (call === null || typeof call !== 'object') continue
      const fn = (call as { function?: unknown }).function
      if (fn !== null && typeof fn === 'object') {
        const { name, arguments: args } = fn as { name?: unknown; arguments?: unknown }
        calls.push(toolCallText(name, args))
      }
    }
  }
  // The deprecated single function call of older chat clients.
  const legacy = item.function_call
  if (legacy !== null && typeof legacy === 'object') {
    const { name, arguments: args } = legacy as { name?: unknown; arguments?: unknown }
    calls.push(toolCallText(name, args))
  }
  for (const call of calls) body += (body ? '\n' : '') + call
  return `<|${role}|>\n${body}\n`
}

/** Longest text one opaque Responses item contributes; the rest is summarised by length and hash. */
export const MAX_OPAQUE_ITEM_CHARS = 4096
/** Strings at least this long made only of base64 (or base64url) characters are blobs. */
const MIN_BASE64_BLOB_CHARS = 256
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/
const DATA_URL = /^data:[^,]*;base64,/
/** Characters hashed from each end of a blob: enough to tell two images apart, bounded in time. */
const BLOB_SAMPLE_CHARS = 1024

/**
 * An input item of a type not read as a turn (`computer_call_output`, `image_generation_call`,
 * `reasoning`, ...), as deterministic JSON in the client's key order, bounded: a data URL or a long
 * base64 string (a screenshot, a generated image, encrypted reasoning) is written as its length and
 * a hash, not its bytes, and the item as a whole as at most MAX_OPAQUE_ITEM_CHARS characters plus
 * its full length and hash. The same item always gives the same text and two different ones almost
 * never do, so prefix hashing still tells them apart, while a megabyte of base64 cannot inflate the
 * prompt-token estimate: it is not text the engine prefills, and nothing else shares its prefix.
 * An image inside (a `computer_screenshot`) is counted into `media`, as an `input_image` is.
 */
function opaqueItemText(item: Record<string, unknown>, media: MediaCount): string {
  const json = JSON.stringify(item, (_key, value: unknown) => {
    if (typeof value === 'string') return blobText(value) ?? value
    // A screenshot the model is shown is an image however it arrives, and costs its tokens.
    if (OPAQUE_MEDIA_TYPES.has(field(value, 'type') as string)) media.parts++
    return value
  })
  if (json.length <= MAX_OPAQUE_ITEM_CHARS) return json
  return `${json.slice(0, MAX_OPAQUE_ITEM_CHARS)}<|+${json.length - MAX_OPAQUE_ITEM_CHARS} chars #${hashText53(json).toString(36)}|>`
}

/** Parts inside an opaque item that the model sees as media: `computer_call_output`'s screenshot. */
const OPAQUE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'computer_screenshot',
  'input_image',
  'input_file',
])

/** A data URL or a long base64 string as its media type, length and a hash; undefined otherwise. */
function blobText(value: string): string | undefined {
  const isDataUrl = DATA_URL.test(value.slice(0, 256))
  if (!isDataUrl && !(value.length >= MIN_BASE64_BLOB_CHARS && BASE64.test(value))) return undefined
  const mediaType = isDataUrl ? value.slice(5, value.indexOf(';')) : ''
  return `<|blob ${mediaType ? `${mediaType} ` : ''}${value.length} chars #${sampledHash(value)}|>`
}

/** A hash of a string that may be megabytes: its length and both ends, bounded in time. */
function sampledHash(value: string): string {
  const head = hashText53(value, 0, Math.min(value.length, BLOB_SAMPLE_CHARS))
  const tail = hashText53(value, Math.max(0, value.length - BLOB_SAMPLE_CHARS), value.length, head)
  return `${value.length.toString(36)}${tail.toString(36)}`
}

/** The media parts a flattening met: counted as they are written, never read back from text. */
export interface MediaCount {
  parts: number
}

/** An image, audio clip, video or file, by what identifies it: its URL, file id or bytes. */
function mediaText(media: MediaCount, kind: string, ...refs: unknown[]): string {
  media.parts++
  const ref = refs.find((value): value is string => typeof value === 'string' && value !== '')
  return `<|media ${kind} #${ref === undefined ? '?' : sampledHash(ref)}|>`
}

const field = (value: unknown, name: string): unknown =>
  value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined

/**
 * The text of a message's content: a string, or the parts of a content array that reach the
 * prompt (text parts, tool calls, tool results), one per line.
 */
export function contentText(content: unknown, media: MediaCount = { parts: 0 }): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  let out = ''
  for (const part of content) {
    const text = partText(part, media)
    if (text !== undefined) out += (out ? '\n' : '') + text
  }
  return out
}

function partText(part: unknown, media: MediaCount): string | undefined {
  if (part === null || typeof part !== 'object') return undefined
  const block = part as Record<string, unknown>
  if (typeof block.text === 'string') return block.text
  switch (block.type) {
    case 'tool_use':
      return toolCallText(block.name, block.input)
    case 'tool_result':
      // Anthropic: `content` is a string or an array of blocks, and an error result reads differently.
      return `<|tool_result${block.is_error === true ? ' error' : ''}|>\n${contentText(block.content, media)}`
    case 'refusal':
      return typeof block.refusal === 'string' ? block.refusal : undefined
    // OpenAI chat: `image_url` is `{ url }` (or a bare string from lenient clients).
    case 'image_url':
      return mediaText(media, 'image', field(block.image_url, 'url'), block.image_url)
    // vLLM's extensions for video, and audio by URL.
    case 'video_url':
      return mediaText(media, 'video', field(block.video_url, 'url'), block.video_url)
    case 'audio_url':
      return mediaText(media, 'audio', field(block.audio_url, 'url'), block.audio_url)
    case 'input_audio':
      return mediaText(media, 'audio', field(block.input_audio, 'data'))
    case 'file':
      return mediaText(
        media,
        'file',
        field(block.file, 'file_data'),
        field(block.file, 'file_id'),
        field(block.file, 'filename'),
      )
    // Responses API.
    case 'input_image':
      return mediaText(media, 'image', block.image_url, block.file_id)
    case 'input_file':
      return mediaText(
        media,
        'file',
        block.file_data,
        block.file_id,
        block.file_url,
        block.filename,
      )
    // Anthropic: a `source` of base64 data, a URL or an uploaded file; a document may be text.
    case 'image':
      return mediaText(media, 'image', ...sourceRefs(block.source))
    case 'document': {
      const source = block.source
      if (field(source, 'type') === 'text' && typeof field(source, 'data') === 'string') {
        return `<|document|>\n${field(source, 'data') as string}`
      }
      if (field(source, 'type') === 'content')
        return `<|document|>\n${contentText(field(source, 'content'), media)}`
      return mediaText(media, 'document', ...sourceRefs(source))
    }
    default:
      return undefined
  }
}

/** What identifies an Anthropic media `source`: its data, URL or file id. */
function sourceRefs(source: unknown): unknown[] {
  return [field(source, 'data'), field(source, 'url'), field(source, 'file_id')]
}

/** A tool call: its name, then its arguments (OpenAI's JSON string as sent, Anthropic's object). */
function toolCallText(name: unknown, args: unknown): string {
  const argsText = typeof args === 'string' ? args : args === undefined ? '' : JSON.stringify(args)
  return `<|tool_call|>${typeof name === 'string' ? name : ''}\n${argsText}`
}

/** A legacy completions or embeddings prompt as text, and its length when given as token ids. */
export interface CompletionPrompt {
  readonly text: string
  /** Set only when every prompt is token ids: then the count is exact, not an estimate. */
  readonly tokens: number | undefined
  /**
   * How many prompts it holds: a batch (a list of strings or of token-id lists) is run by the
   * engine as that many requests, each generating its own output. Undefined means one.
   */
  readonly prompts?: number
}

/**
 * The prompt of a legacy completions or embeddings request: a string, an array of strings, an
 * array of token ids, or an array of token-id arrays (a batch). Token ids become a fixed-width text
 * (see tokenIdsText) so that a shared token prefix is a shared text prefix; batch entries are
 * joined by newlines.
 */
export function completionPrompt(prompt: unknown): CompletionPrompt {
  if (typeof prompt === 'string') return { text: prompt, tokens: undefined }
  if (!Array.isArray(prompt) || prompt.length === 0) return { text: '', tokens: undefined }
  if (prompt.every(isTokenId)) return { text: tokenIdsText(prompt), tokens: prompt.length }
  const texts: string[] = []
  // Consecutive token-id prompts are written as one text (tokenIdListsText): one string per entry
  // cost a second for a body of millions of one-id prompts.
  let idLists: number[][] = []
  const flushIdLists = (): void => {
    if (idLists.length === 0) return
    texts.push(tokenIdListsText(idLists))
    idLists = []
  }
  let tokens = 0
  let allTokenIds = true
  for (const entry of prompt) {
    if (typeof entry === 'string') {
      flushIdLists()
      texts.push(entry)
      allTokenIds = false
    } else if (Array.isArray(entry) && entry.every(isTokenId)) {
      idLists.push(entry)
      tokens += entry.length
    } else {
      allTokenIds = false
    }
  }
  flushIdLists()
  return {
    text: texts.join('\n'),
    tokens: allTokenIds ? tokens : undefined,
    ...(prompt.length > 1 ? { prompts: prompt.length } : {}),
  }
}

/**
 * vLLM's `prompt_embeds` on a completions request: one base64 tensor or a list of them, each a
 * prompt of its own ahead of any `prompt` (vLLM runs both). The router cannot count a tensor's
 * tokens, so each is written and counted as a media part: a marker hashed from its bytes.
 * Undefined when the field holds no such thing.
 */
export function promptEmbedsPrompt(
  value: unknown,
  media: MediaCount,
): CompletionPrompt | undefined {
  const tensors = typeof value === 'string' ? [value] : value
  if (!Array.isArray(tensors) || tensors.length === 0) return undefined
  if (!tensors.every((tensor) => typeof tensor === 'string')) return undefined
  const text = tensors.map((tensor) => mediaText(media, 'prompt_embeds', tensor)).join('\n')
  return { text, tokens: undefined, ...(tensors.length > 1 ? { prompts: tensors.length } : {}) }
}

function isTokenId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}
