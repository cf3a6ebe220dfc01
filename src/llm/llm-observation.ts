import type { Endpoint } from '../upstream/endpoint.ts'
import type { LlmRequest } from './llm-request.ts'
import type { TapResult } from './response-tap.ts'

/** One finished LLM response as the router saw it: what the learners (tokens, capacity) feed on. */
export interface LlmResponseObservation {
  readonly endpoint: Endpoint
  readonly llm: LlmRequest
  /** Clock time the request was dispatched, ms. */
  readonly sentAtMs: number
  /** True for a complete 2xx response. */
  readonly ok: boolean
  /** Prefill tokens already pending on the endpoint at dispatch, by router-side accounting. */
  readonly prefillAheadTokens: number
  /** This request's own prefill tokens as charged to the lease. */
  readonly prefillTokens: number
  readonly tap: TapResult
}
