import type { Endpoint } from '../upstream/endpoint.ts'
import type { LlmRequest } from './llm-request.ts'
import type { TapResult } from './response-tap.ts'

/** One finished LLM response as the router saw it: what the learners (tokens, capacity) feed on. */
export interface LlmResponseObservation {
  readonly endpoint: Endpoint
  readonly llm: LlmRequest
  /** Clock time the request was dispatched, ms. */
  readonly sentAtMs: number
  /** True for a 2xx response the endpoint served without fault (the client may have left). */
  readonly ok: boolean
  /**
   * The response ran to its end: the client got all of it, neither side cut it. Only then does a
   * stream's event count measure its whole output.
   */
  readonly completed?: boolean | undefined
  /**
   * False when a reload pointed the endpoint's id at another server while this response was in
   * flight: its timings are the old server's, and must not teach the new one's rates.
   */
  readonly endpointCurrent?: boolean | undefined
  /**
   * The client pushed back at some point: from then tokens passed at its pace, not the engine's,
   * so the stream's token gaps say nothing about the decode step.
   */
  readonly clientStalled?: boolean | undefined
  /** Prefill tokens already pending on the endpoint at dispatch, by router-side accounting. */
  readonly prefillAheadTokens: number
  /** This request's own prefill tokens as charged to the lease. */
  readonly prefillTokens: number
  readonly tap: TapResult
}
