import { isRecord } from '../util/is-record.ts'

/**
 * The message of a stream's in-band error event, from its data (as the response tap kept it: the
 * head of the event, possibly cut short): OpenAI's and vLLM's `{"error": {"message": ...}}` (or a
 * bare `{"error": "..."}`), Anthropic's `{"type": "error", "error": {"message": ...}}`, the
 * Responses API's `response.failed` (`response.error.message`) and its `error` event (a top-level
 * `message`). A head cut short of valid JSON still gives the first `"message"` string it holds
 * whole. Undefined when the event carries no message.
 */
export function streamErrorMessage(data: string): string | undefined {
  let event: unknown
  try {
    event = JSON.parse(data)
  } catch {
    return firstMessageString(data)
  }
  if (!isRecord(event)) return undefined
  const { error, response } = event
  if (typeof error === 'string') return error
  return (
    stringField(error, 'message') ??
    (isRecord(response) ? stringField(response.error, 'message') : undefined) ??
    stringField(event, 'message')
  )
}

/** A `"message"` key followed by a complete JSON string. */
const MESSAGE_STRING = /"message"\s*:\s*("(?:[^"\\]|\\.)*")/

function firstMessageString(data: string): string | undefined {
  const literal = MESSAGE_STRING.exec(data)?.[1]
  if (literal === undefined) return undefined
  try {
    return JSON.parse(literal) as string
  } catch {
    return undefined
  }
}

function stringField(value: unknown, key: string): string | undefined {
  if (!isRecord(value)) return undefined
  const field = value[key]
  return typeof field === 'string' ? field : undefined
}
