/**
 * Flattens a chat request into the text an engine would prefill, deterministically: an optional
 * system prompt, then every message in order as `<|role|>` then its text content, each followed by a
 * newline. Conversations that share their first turns therefore share a text prefix, which is what
 * prefix caching keys on. Content arrays contribute their text parts (`text`, `input_text`,
 * `output_text`); other parts (images, audio, tool calls) contribute nothing.
 */
export function flattenChat(messages: readonly unknown[], system?: string): string {
  let out = system ? `<|system|>\n${system}\n` : ''
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue
    const { role, content } = message as { role?: unknown; content?: unknown }
    out += `<|${typeof role === 'string' ? role : 'user'}|>\n${contentText(content)}\n`
  }
  return out
}

/** The text of a message's content: a string, or the text parts of a content array. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  let out = ''
  for (const part of content) {
    if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      out += (out ? '\n' : '') + (part as { text: string }).text
    }
  }
  return out
}

/** The prompt of a legacy completions or embeddings request: a string, or an array of strings. */
export function completionPrompt(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt
  if (Array.isArray(prompt)) {
    return prompt.filter((p): p is string => typeof p === 'string').join('\n')
  }
  return ''
}
