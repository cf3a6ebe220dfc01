/**
 * A cheap prompt-token estimate for routing: about 4 characters per token for English text with
 * BPE tokenizers. The scheduler issue replaces this with a real tokenizer where the model family is
 * known and a per-model ratio corrected online from upstream `usage`.
 */
export const DEFAULT_CHARS_PER_TOKEN = 4

export function estimateTokens(text: string, charsPerToken = DEFAULT_CHARS_PER_TOKEN): number {
  return Math.ceil(text.length / charsPerToken)
}
