import { createNumberPool, type NumberPool } from './percentiles.ts'

/** What the client saw of one request, in trace milliseconds since the replay started. */
export interface RequestOutcome {
  readonly sendMs: number
  readonly ok: boolean
  /** HTTP status, or 0 when no response came (connection error, client timeout). */
  readonly status: number
  readonly error?: string | undefined
  /** The first chunk with non-empty content. */
  readonly firstContentMs?: number | undefined
  readonly endMs: number
  /** Content chunks received (the output tokens seen at the client). */
  readonly contentChunks: number
  /** Sum of the gaps between content chunks. */
  readonly itlSumMs: number
  /** `usage.prompt_tokens` and `usage.completion_tokens`, when the usage chunk came. */
  readonly promptTokens?: number | undefined
  readonly completionTokens?: number | undefined
  /** Prompt tokens the engine's prefix cache held when it first scheduled the request. */
  readonly cachedPromptTokens?: number | undefined
}

/** Per-replica engine counters over the run (after minus before). */
export interface ReplicaDelta {
  readonly id: string
  readonly prefixQueries: number
  readonly prefixHits: number
  readonly preemptions: number
}

/** One sample of every replica's load, for the load-over-time and hit-rate charts. */
export interface LoadSample {
  readonly atMs: number
  /** running + waiting, per replica in fleet order. */
  readonly load: readonly number[]
  /** Cumulative prefix-cache hit rate over the fleet so far (null before any query). */
  readonly hitRate: number | null
}

/** Everything one policy's run produced, before it is summarised. */
export interface RunRecord {
  readonly outcomes: RequestOutcome[]
  /** Every gap between consecutive content chunks of every request, pooled. */
  readonly itlGapsMs: NumberPool
  replicas: ReplicaDelta[]
  readonly samples: LoadSample[]
  /** Requests whose `usage.prompt_tokens` differed from the trace's input length. */
  promptTokenMismatches: number
  readonly diagnostics: Record<string, unknown>
}

export function createRunRecord(): RunRecord {
  return {
    outcomes: [],
    itlGapsMs: createNumberPool(),
    replicas: [],
    samples: [],
    promptTokenMismatches: 0,
    diagnostics: {},
  }
}
