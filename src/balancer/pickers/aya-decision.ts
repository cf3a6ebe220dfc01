import { channel } from 'node:diagnostics_channel'

/** Which rule placed a request: exported as a counter per branch, and in the debug decision log. */
export type AyaBranch =
  | 'warm'
  | 'valve'
  | 'tie'
  | 'slo'
  | 'cold'
  | 'saturated'
  | 'queue'
  | 'bound'
  | 'no-llm'
  | 'moved'

export interface AyaCandidate {
  readonly endpoint: string
  readonly predictedTtftMs: number
  /** Predicted TTFT plus the fleet's cost of the prefill this endpoint would need. */
  readonly costMs: number
  readonly hitTokens: number
  readonly prefillTokensPerSec: number
  readonly kvOk: boolean
  /** Its streams decode within `maxItlMs` (always true with the check off). */
  readonly decodeOk: boolean
  /**
   * False when admission let the request through for its TTFT SLO and this endpoint would miss
   * it: the pick keeps to those that would not.
   */
  readonly withinSlo: boolean
}

export interface AyaDecision {
  readonly policy: 'aya'
  readonly branch: AyaBranch
  readonly chosen: string
  readonly model: string
  readonly promptTokens: number
  /**
   * The output the scheduler charged the request's KV and decode for: the predictor's mean for
   * the request's cell (0 without LLM signals' history, or for a request that is not LLM).
   */
  readonly predictedOutputTokens: number
  readonly candidates: readonly AyaCandidate[]
}

/** Which branch decided, published for every decision: the observability layer counts these. */
export interface AyaBranchDecision {
  readonly policy: 'aya'
  readonly branch: AyaBranch
}

/** Every decision's branch, cheap enough to publish always (one shared message per branch). */
export const ayaBranchChannel = channel('aya:scheduler:branch')

/**
 * Every decision in full, with each candidate's predictions: built only while someone subscribes
 * (the debug log, tests), since it costs an array per decision.
 */
export const ayaDecisionChannel = channel('aya:scheduler:decision')

const BRANCH_DECISIONS: Readonly<Record<AyaBranch, AyaBranchDecision>> = {
  warm: { policy: 'aya', branch: 'warm' },
  valve: { policy: 'aya', branch: 'valve' },
  tie: { policy: 'aya', branch: 'tie' },
  slo: { policy: 'aya', branch: 'slo' },
  cold: { policy: 'aya', branch: 'cold' },
  saturated: { policy: 'aya', branch: 'saturated' },
  queue: { policy: 'aya', branch: 'queue' },
  bound: { policy: 'aya', branch: 'bound' },
  'no-llm': { policy: 'aya', branch: 'no-llm' },
  moved: { policy: 'aya', branch: 'moved' },
}

/**
 * One router's own decisions: the Aya instance that owns a policy counts and logs them here. The
 * channels above are process-wide, for observers outside Aya: two instances in one process that
 * counted from them would each count the other's decisions too.
 */
export interface DecisionSink {
  branch(decision: AyaBranchDecision): void
  /** Whether full decisions are wanted now: they cost an array per request, so built only then. */
  readonly wantsDecisions: boolean
  decision(decision: AyaDecision): void
}

/** Counts the branch, in the sink and on the channel. */
export function publishBranch(branch: AyaBranch, sink: DecisionSink | undefined): void {
  const decision = BRANCH_DECISIONS[branch]
  sink?.branch(decision)
  if (ayaBranchChannel.hasSubscribers) ayaBranchChannel.publish(decision)
}

/** Whether anyone wants the full decision: the sink, or a subscriber of the channel. */
export function wantsDecisions(sink: DecisionSink | undefined): boolean {
  return sink?.wantsDecisions === true || ayaDecisionChannel.hasSubscribers
}
