import type { IncomingMessage, ServerResponse } from 'node:http'
import { anthropicType } from '../util/anthropic-error-type.ts'
import {
  anthropicUsageOf,
  messageBody,
  messageEndEvents,
  messageStartEvents,
  messagesErrorBody,
  textDeltaEvent,
} from './anthropic-response.ts'
import type { Engine, RequestResult } from './engine.ts'
import { contextLengthError } from './engine.ts'
import type { InferenceRequest, SimApi } from './inference-request.ts'
import {
  type ChunkOptions,
  chatBody,
  chatChunk,
  completionBody,
  completionChunk,
  createTokenEventFormatter,
  errorBody,
  type ResponseIdentity,
  SSE_DONE,
  sseData,
  usageChunk,
  usageOf,
} from './openai-response.ts'
import { OUTPUT_TOKENS_HEADER } from './sim-headers.ts'

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}

export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  param: string | null = null,
  code: string | number | null = null,
  type = 'invalid_request_error',
): void {
  sendJson(res, status, errorBody(message, type, param, code))
}

/** An error in the shape of the request's API: Anthropic's for messages, OpenAI's otherwise. */
export function sendApiError(
  res: ServerResponse,
  api: SimApi,
  status: number,
  message: string,
  openAi: { param?: string | null; code?: string | number | null; type?: string } = {},
): void {
  if (api === 'messages') {
    sendJson(res, status, messagesErrorBody(anthropicType(status), message))
    return
  }
  sendError(res, status, message, openAi.param ?? null, openAi.code ?? null, openAi.type)
}

function readOutputTokens(req: IncomingMessage): number | undefined | 'invalid' {
  const raw = req.headers[OUTPUT_TOKENS_HEADER]
  if (raw === undefined) return undefined
  const value = Number(Array.isArray(raw) ? raw[0] : raw)
  return Number.isInteger(value) && value >= 1 ? value : 'invalid'
}

/**
 * Runs one parsed request on the engine and answers it in its API's shape, streaming or not. A
 * client that goes away aborts the request in the engine, which frees its KV blocks.
 */
export function runInference(
  engine: Engine,
  request: InferenceRequest,
  identity: ResponseIdentity,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const { profile } = engine
  const outputTokens = readOutputTokens(req)
  const { api, prompt } = request
  if (outputTokens === 'invalid') {
    sendApiError(res, api, 400, `${OUTPUT_TOKENS_HEADER} must be a positive integer`)
    return
  }
  const tooLong = contextLengthError(profile, prompt.promptTokens, request.maxTokens)
  if (tooLong) {
    const param = api === 'completions' ? 'prompt' : 'messages'
    sendApiError(res, api, 400, tooLong, { param, code: 'context_length_exceeded' })
    return
  }
  const chunkOptions: ChunkOptions = {
    includeUsage: request.includeUsage,
    ...(request.continuousUsage ? { continuousUsage: { promptTokens: prompt.promptTokens } } : {}),
  }
  const tokenEvent =
    api === 'messages' ? textDeltaEvent : createTokenEventFormatter(identity, api, chunkOptions)
  let text = ''
  let isDone = false
  let isStreaming = false

  const writeChunk = (payload: unknown): void => {
    if (!res.writableEnded && !res.destroyed) res.write(sseData(payload))
  }
  const onDone = (result: RequestResult): void => {
    isDone = true
    if (result.finishReason === 'abort' || res.writableEnded || res.destroyed) return
    if (api === 'messages') {
      const usage = anthropicUsageOf(
        result.promptTokens,
        result.completionTokens,
        result.cachedPromptTokens,
      )
      if (!isStreaming) sendJson(res, 200, messageBody(identity, text, result.finishReason, usage))
      else res.end(messageEndEvents(result.finishReason, usage))
      return
    }
    const usage = usageOf(result.promptTokens, result.completionTokens, result.cachedPromptTokens)
    if (!isStreaming) {
      const body =
        api === 'chat'
          ? chatBody(identity, text, result.finishReason, usage)
          : completionBody(identity, text, result.finishReason, usage)
      sendJson(res, 200, body)
      return
    }
    writeChunk(
      api === 'chat'
        ? chatChunk(identity, {}, result.finishReason, chunkOptions, result.completionTokens)
        : completionChunk(identity, '', result.finishReason, chunkOptions, result.completionTokens),
    )
    if (request.includeUsage) writeChunk(usageChunk(identity, api, usage))
    res.end(SSE_DONE)
  }

  let syncError: { code: string; message: string } | undefined
  const handle = engine.submit(
    { ...prompt, maxTokens: request.maxTokens, outputTokens },
    {
      onToken(token) {
        if (!isStreaming) {
          text += token.text
          return
        }
        if (token.index === 0 && api === 'chat') {
          writeChunk(chatChunk(identity, { role: 'assistant', content: '' }, null, chunkOptions))
        }
        if (token.index === 0 && api === 'messages' && !res.writableEnded && !res.destroyed) {
          res.write(messageStartEvents(identity, prompt.promptTokens))
        }
        if (!res.writableEnded && !res.destroyed) res.write(tokenEvent(token.text, token.index + 1))
      },
      onDone,
      onError(error) {
        isDone = true
        if (!res.headersSent) {
          syncError = error
          const status = error.code === 'engine_closed' ? 503 : 400
          return sendApiError(res, api, status, error.message, { code: error.code })
        }
        res.destroy()
      },
    },
  )
  if (syncError) return
  res.on('close', () => {
    if (!isDone) handle.abort()
  })
  if (request.isStream) {
    isStreaming = true
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    })
    res.flushHeaders()
  }
}
