import type { IncomingMessage, ServerResponse } from 'node:http'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { Endpoint } from '../upstream/endpoint.ts'
import type { ErrorCode } from './errors.ts'
import type { CompiledRoute } from './route-table.ts'

/** Per-request state: the only channel between phases, and what logs and metrics read at the end. */
export interface RequestContext {
  readonly id: string
  readonly startMs: number
  readonly listener: string
  readonly clientIp: string
  readonly method: string
  /** Path and query as received. */
  readonly url: string
  /**
   * Path and query as the upstream's API sees them, after the route's `rewrite`: what the models
   * gateway parses and shapes its errors by. Undefined until a route matched (then `url`).
   */
  apiUrl?: string | undefined
  readonly req: IncomingMessage
  readonly res: ServerResponse
  route: CompiledRoute | undefined
  upstream: string | undefined
  endpoint: Endpoint | undefined
  /** Set on LLM routes by the models gateway. */
  llm: LlmRequest | undefined
  /**
   * The model the client named, once the models gateway read it: also for a request with no LLM
   * request (`count_tokens`) or one the registry does not know (404), for the access log.
   */
  requestedModel?: string | undefined
  /**
   * The model registry entry (`models.<name>`, a wildcard as written) the request resolved to:
   * bounded by the config, unlike `llm.model`, the name the client sent. Set with `llm`.
   */
  modelEntry?: string | undefined
  /**
   * LLM routes, streamed responses: time from the request's arrival to the first generated token
   * passed to the client, ms (admission queue and prefill pacing included). Undefined for a body
   * that was not streamed, and for a stream that failed or ended before any token.
   */
  ttftMs?: number | undefined
  /**
   * LLM streams with at least two tokens per sequence: the mean time between output tokens after
   * the first, ms ((last − first) ÷ (tokens − 1)).
   */
  timePerOutputTokenMs?: number | undefined
  /** LLM routes: the prompt tokens the upstream reported (cached ones included). */
  promptTokens?: number | undefined
  /** LLM routes: the generated tokens the upstream reported. */
  completionTokens?: number | undefined
  /**
   * The client sent `Expect: 100-continue` and waits to be told to send its body: it is, before
   * the body is read or Aya answers, unless the answer refuses the body for its declared size.
   */
  awaitingContinue?: boolean | undefined
  attempts: number
  status: number
  errorCode: ErrorCode | undefined
  /** With an upstream's `errorCode`: why it failed, as its cause says (`upstreamErrorDetail`). */
  errorDetail?: string | undefined
  /**
   * Request body bytes read from the client, counted as they pass: not its declared length, so
   * a body refused before it was read counts none.
   */
  bytesIn: number
  bytesOut: number
  /** Time to the upstream's response headers, ms. */
  upstreamLatencyMs: number | undefined
  durationMs: number
}

/**
 * What metrics and the access log read of a request once it is over: a RequestContext, or a
 * request the HTTP server answered itself, whose method and target are unknown when it could not
 * be parsed.
 */
export type RequestRecord = Pick<
  RequestContext,
  | 'id'
  | 'listener'
  | 'clientIp'
  | 'route'
  | 'upstream'
  | 'endpoint'
  | 'llm'
  | 'requestedModel'
  | 'modelEntry'
  | 'ttftMs'
  | 'timePerOutputTokenMs'
  | 'promptTokens'
  | 'completionTokens'
  | 'attempts'
  | 'status'
  | 'errorCode'
  | 'errorDetail'
  | 'bytesIn'
  | 'bytesOut'
  | 'upstreamLatencyMs'
  | 'durationMs'
> & {
  readonly method: string | undefined
  readonly url: string | undefined
}

const REQUEST_ID = /^[\w.:/+=@-]{1,200}$/

/** Keeps a caller's well-formed x-request-id so traces join up; otherwise makes a fresh one. */
export function requestIdFrom(
  header: string | string[] | undefined,
  generate: () => string,
): string {
  const value = Array.isArray(header) ? header[0] : header
  return value !== undefined && REQUEST_ID.test(value) ? value : generate()
}
