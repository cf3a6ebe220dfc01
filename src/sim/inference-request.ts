import type { OpenAiApi, OpenAiRequest } from './openai-request.ts'

/** The APIs a simulated replica serves: OpenAI's chat and completions, and Anthropic's messages. */
export type SimApi = OpenAiApi | 'messages'

/** A request the engine runs, whichever API it came in on; `api` decides the answer's shape. */
export interface InferenceRequest extends Omit<OpenAiRequest, 'api'> {
  readonly api: SimApi
}
