import { chainBlockHash } from './block-hash.ts'

export type FinishReason = 'stop' | 'length' | 'abort'

export interface GeneratedToken {
  readonly index: number
  readonly text: string
  /** Engine time at which the step that produced the token ended. */
  readonly atMs: number
}

export interface RequestResult {
  readonly finishReason: FinishReason
  readonly promptTokens: number
  readonly completionTokens: number
  /** Prompt tokens served from the prefix cache when the request was first admitted. */
  readonly cachedPromptTokens: number
  readonly arrivalMs: number
  readonly firstTokenMs: number | undefined
  readonly finishMs: number
  readonly preemptions: number
}

export interface RequestError {
  readonly code: 'context_length_exceeded' | 'kv_capacity_exceeded' | 'engine_closed'
  readonly message: string
}

/** Per-request callbacks; the HTTP server and the DES bench both drive the engine through these. */
export interface RequestEvents {
  onFirstToken?(atMs: number): void
  onToken?(token: GeneratedToken): void
  onDone?(result: RequestResult): void
  onError?(error: RequestError): void
}

/** A request's mutable state inside the engine (vLLM's `Request`). */
export interface SimRequest {
  readonly id: string
  readonly promptTokens: number
  readonly promptBlockHashes: readonly number[]
  readonly promptHash: number
  readonly targetOutputTokens: number
  readonly finishReasonAtTarget: FinishReason
  readonly arrivalMs: number
  readonly events: RequestEvents
  status: 'arriving' | 'waiting' | 'running' | 'finished'
  /** Engine time from which the scheduler may admit it (arrival + API overhead). */
  readyMs: number
  /** Known tokens: prompt plus generated so far. */
  numTokens: number
  /** Tokens whose KV is computed or scheduled to be in the step in flight. */
  numComputed: number
  numOutput: number
  blocks: number[]
  /** How many leading blocks are registered in the prefix cache. */
  numCachedBlocks: number
  /** Chained hashes of full blocks, generated blocks appended as they fill. */
  readonly blockHashes: number[]
  cachedPromptTokens: number | undefined
  firstScheduledMs: number | undefined
  firstTokenMs: number | undefined
  lastTokenMs: number | undefined
  preemptions: number
}

/**
 * The hash of block `index`. Prompt blocks hash the prompt's text; blocks holding generated tokens
 * hash the prompt's identity and the position, since generated text is a function of both.
 */
export function blockHashAt(request: SimRequest, index: number): number {
  const hashes = request.blockHashes
  while (hashes.length <= index) {
    const j = hashes.length
    hashes.push(chainBlockHash(hashes[j - 1], `gen:${request.promptHash}:${j}`))
  }
  return hashes[index]!
}
