import type { EngineProfile } from './profiles.ts'

/** vLLM's own check, as its OpenAI server phrases it; undefined when the request fits. */
export function contextLengthError(
  profile: EngineProfile,
  promptTokens: number,
  maxTokens: number | undefined,
): string | undefined {
  const limit = profile.maxModelLen
  if (maxTokens === undefined) {
    if (promptTokens < limit) return undefined
    return `This model's maximum context length is ${limit} tokens. However, you requested ${promptTokens} tokens in the messages, Please reduce the length of the messages.`
  }
  if (promptTokens + maxTokens <= limit) return undefined
  return `This model's maximum context length is ${limit} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`
}
