import type { Endpoint } from '../../upstream/endpoint.ts'
import {
  type AyaBranch,
  type AyaCandidate,
  type AyaDecision,
  ayaDecisionChannel,
  type DecisionSink,
} from './aya-decision.ts'

/** One endpoint's scores for the request being placed; entries are reused across picks. */
export interface Scored {
  endpoint: Endpoint
  /** Prompt tokens its cache took in lately, as a share of its KV capacity (cold near ties). */
  churn: number
  /** Prompt blocks the index says it holds, and its KV capacity in tokens. */
  matchedBlocks: number
  capacityTokens: number
  hitTokens: number
  uncachedTokens: number
  prefillTokensPerSec: number
  predictedTtftMs: number
  costMs: number
  kvOk: boolean
  decodeOk: boolean
  /** KV and decode headroom both. */
  roomOk: boolean
  /** Ruled out by the SLO admission let the request through for (see `aya-near-tie.ts`). */
  sloCut: boolean
  /** Within the near-tie limit of the lowest cost (see `aya-near-tie.ts`). */
  nearTie: boolean
}

/** The scored endpoints of one decision: `entries[0..count)`, reused from pick to pick. */
export interface ScoredSet {
  readonly entries: Scored[]
  count: number
}

/** The entry at `index`, made on first use; the caller fills every field. */
export function scoredAt(set: ScoredSet, index: number, endpoint: Endpoint): Scored {
  let entry = set.entries[index]
  if (!entry) {
    entry = {
      endpoint,
      matchedBlocks: 0,
      capacityTokens: 0,
      hitTokens: 0,
      uncachedTokens: 0,
      prefillTokensPerSec: 0,
      predictedTtftMs: 0,
      costMs: 0,
      kvOk: false,
      decodeOk: false,
      roomOk: false,
      sloCut: false,
      nearTie: false,
      churn: 0,
    }
    set.entries.push(entry)
  }
  return entry
}

/**
 * Each scored endpoint's cost (TTFT plus the fleet's cost of its uncached prefill), over the
 * endpoints that can take the request (all of them when none can); returns the usable endpoint
 * holding most of the prompt beyond what every one holds (the warm one), if any. Placing and
 * explaining need it; `canTake` does not.
 */
export function rankCosts(
  set: ScoredSet,
  anyRoomOk: boolean,
  affinityCredit: number,
): Scored | undefined {
  const { entries, count } = set
  let rateSum = 0
  let usable = 0
  let sharedHitTokens = Number.POSITIVE_INFINITY
  for (let i = 0; i < count; i++) {
    const s = entries[i]!
    if (anyRoomOk && !s.roomOk) continue
    rateSum += s.prefillTokensPerSec
    usable++
    if (s.hitTokens < sharedHitTokens) sharedHitTokens = s.hitTokens
  }
  const meanRate = rateSum / Math.max(1, usable)
  let warm: Scored | undefined
  for (let i = 0; i < count; i++) {
    const s = entries[i]!
    if (anyRoomOk && !s.roomOk) {
      s.costMs = Number.POSITIVE_INFINITY
      continue
    }
    s.costMs = s.predictedTtftMs + ((affinityCredit * s.uncachedTokens) / meanRate) * 1000
    if (s.hitTokens > sharedHitTokens && (!warm || s.hitTokens > warm.hitTokens)) warm = s
  }
  return warm
}

/**
 * The full decision on the debug channel, every candidate with its predictions. `chosen` is
 * undefined for the `queue` branch (the request waits, placed nowhere yet), and the set is empty
 * for `no-llm`.
 */
export function publishDecision(
  branch: AyaBranch,
  set: ScoredSet,
  chosen: string,
  model: string,
  promptTokens: number,
  predictedOutputTokens: number,
  sink: DecisionSink | undefined,
): void {
  const candidates: AyaCandidate[] = []
  for (let i = 0; i < set.count; i++) {
    const s = set.entries[i]!
    candidates.push({
      endpoint: s.endpoint.id,
      predictedTtftMs: Math.round(s.predictedTtftMs * 10) / 10,
      costMs: Math.round(s.costMs * 10) / 10,
      hitTokens: s.hitTokens,
      prefillTokensPerSec: Math.round(s.prefillTokensPerSec),
      kvOk: s.kvOk,
      decodeOk: s.decodeOk,
      withinSlo: !s.sloCut,
    })
  }
  const decision: AyaDecision = {
    policy: 'aya',
    branch,
    chosen,
    model,
    promptTokens,
    predictedOutputTokens: Math.round(predictedOutputTokens),
    candidates,
  }
  if (sink?.wantsDecisions) sink.decision(decision)
  if (ayaDecisionChannel.hasSubscribers) ayaDecisionChannel.publish(decision)
}
