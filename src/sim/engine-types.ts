import type { Clock } from '../util/clock.ts'
import type { Random } from '../util/random.ts'
import type { EngineProfile } from './profiles.ts'
import type { FinishReason, RequestEvents, RequestResult } from './sim-request.ts'

export type {
  FinishReason,
  GeneratedToken,
  RequestError,
  RequestEvents,
  RequestResult,
} from './sim-request.ts'

/** What a client asks the engine for, already tokenised (see `promptIdentity`). */
export interface EngineRequest {
  readonly promptTokens: number
  readonly promptBlockHashes: readonly number[]
  readonly promptHash: number
  /** The client's cap (`max_tokens`); unset means up to the context window. */
  readonly maxTokens?: number | undefined
  /** The true output length (the `x-aya-sim-output-tokens` header): the engine stops there. */
  readonly outputTokens?: number | undefined
}

export interface RequestHandle {
  readonly id: string
  /** Drops the request wherever it is and frees its KV blocks. Fires `onDone` with `abort`. */
  abort(): void
}

export interface StepInfo {
  readonly startMs: number
  readonly durationMs: number
  /** How late the step's end was processed against its absolute deadline, in engine time. */
  readonly latenessMs: number
  readonly prefillTokens: number
  readonly decodeSeqs: number
}

/** Latency samples, in engine milliseconds, for metrics. */
export interface EngineObserver {
  firstToken?(ttftMs: number, queueMs: number): void
  interToken?(itlMs: number): void
  finished?(result: RequestResult): void
  step?(info: StepInfo): void
}

export interface EngineStats {
  readonly running: number
  readonly waiting: number
  readonly kvCacheUsage: number
  readonly numFreeBlocks: number
  readonly numCachedBlocks: number
  readonly prefixCacheQueries: number
  readonly prefixCacheHits: number
  readonly preemptions: number
  readonly promptTokens: number
  readonly generationTokens: number
  readonly requestSuccess: Readonly<Record<FinishReason, number>>
  readonly steps: number
}

export interface StepLatenessStats {
  readonly steps: number
  readonly meanMs: number
  readonly maxMs: number
}

export interface Engine {
  readonly profile: EngineProfile
  submit(request: EngineRequest, events: RequestEvents): RequestHandle
  stats(): EngineStats
  stepLateness(): StepLatenessStats
  close(): void
}

export interface EngineOptions {
  readonly profile: EngineProfile
  /** Seeds the output length of requests that give neither `maxTokens` nor `outputTokens`. */
  readonly seed?: number
  /** Steps processed in one timer callback when the engine has fallen behind its clock. */
  readonly maxCatchUpSteps?: number
}

export interface EngineDeps {
  readonly clock: Clock
  readonly random?: Random
  readonly observer?: EngineObserver
}
