import type { CacheGrowth } from '../../llm/cache-growth.ts'
import type { Random } from '../../util/random.ts'
import type { AyaOptions } from './aya-options.ts'
import type { Scored, ScoredSet } from './aya-scored.ts'

/** Who should get the request among the scored endpoints, once their costs are ranked. */
export interface NearTieChooser {
  choose(
    set: ScoredSet,
    ttftSloMs: number | undefined,
    sessionEndpointId: string | undefined,
    warm: Scored | undefined,
  ): Scored
}

/**
 * The lowest cost wins; endpoints within the slack of it are near ties. The session's endpoint
 * wins among them; otherwise `nearTieChoices` drawn at random are decided by the decode
 * interference they would suffer and, for a cold prompt, their cache churn, exact ties uniformly
 * at random (no allocation).
 */
export function createNearTieChooser(
  options: Pick<
    AyaOptions,
    | 'interferenceSlackMs'
    | 'interferenceSlackShare'
    | 'nearTieChoices'
    | 'coldGrowth'
    | 'decodeInterference'
  >,
  deps: { readonly random: Random; readonly growth: CacheGrowth },
): NearTieChooser {
  // Per-decision scratch: which entries are near ties.
  const tieIndexes: number[] = []
  return {
    choose(set, ttftSloMs, sessionEndpointId, warm) {
      const { entries, count } = set
      const isCold = warm === undefined
      // Admission let the request through because some endpoint can start it within its SLO:
      // keep to those, so the pick does what `canTake` promised.
      if (ttftSloMs !== undefined) {
        let anyWithin = false
        for (let i = 0; i < count; i++) {
          const s = entries[i]!
          if (Number.isFinite(s.costMs) && s.predictedTtftMs <= ttftSloMs) anyWithin = true
        }
        for (let i = 0; i < count && anyWithin; i++) {
          const s = entries[i]!
          if (s.predictedTtftMs > ttftSloMs) s.sloCut = true
        }
      }
      let bestCost = Number.POSITIVE_INFINITY
      let bestTtft = Number.POSITIVE_INFINITY
      let rateSum = 0
      let usable = 0
      for (let i = 0; i < count; i++) {
        const s = entries[i]!
        if (!Number.isFinite(s.costMs) || s.sloCut) continue
        if (s.costMs < bestCost) bestCost = s.costMs
        if (s.predictedTtftMs < bestTtft) bestTtft = s.predictedTtftMs
        rateSum += s.prefillTokensPerSec
        usable++
      }
      const meanRate = rateSum / Math.max(1, usable)
      const limit =
        bestCost + Math.max(options.interferenceSlackMs, options.interferenceSlackShare * bestTtft)
      // The near ties, and the session's endpoint among them if it is one.
      let tieCount = 0
      let sessionTie: Scored | undefined
      for (let i = 0; i < count; i++) {
        const s = entries[i]!
        // Marked whether or not the SLO cut it: a warm endpoint within the limit lost only a draw.
        s.nearTie = s.costMs <= limit
        if (!s.nearTie || s.sloCut) continue
        tieIndexes[tieCount++] = i
        if (s.endpoint.id === sessionEndpointId) sessionTie = s
      }
      // The session's endpoint wins any near tie: it probably holds context the index cannot see.
      if (sessionTie) return sessionTie
      // Power of d choices: a partial Fisher-Yates shuffle draws the candidates.
      const choices =
        options.nearTieChoices === 0 ? tieCount : Math.min(tieCount, options.nearTieChoices)
      if (choices < tieCount) {
        for (let k = 0; k < choices; k++) {
          const j = k + Math.floor(deps.random() * (tieCount - k))
          const picked = tieIndexes[j]!
          tieIndexes[j] = tieIndexes[k]!
          tieIndexes[k] = picked
        }
      }
      // Cold growth is charged relative to the candidates' mean churn: only differences count.
      let meanChurn = 0
      if (isCold && options.coldGrowth > 0) {
        for (let k = 0; k < choices; k++) {
          const s = entries[tieIndexes[k]!]!
          s.churn = deps.growth.tokens(s.endpoint.id) / s.capacityTokens
          meanChurn += s.churn
        }
        meanChurn /= choices
      }
      let chosen = entries[tieIndexes[0]!]!
      let chosenScore = Number.POSITIVE_INFINITY
      let ties = 0
      for (let k = 0; k < choices; k++) {
        const s = entries[tieIndexes[k]!]!
        const stallMs = (s.uncachedTokens / meanRate) * 1000
        const growthMs =
          meanChurn > 0 ? options.coldGrowth * stallMs * (s.churn / meanChurn - 1) : 0
        const tieScore =
          s.costMs + options.decodeInterference * s.endpoint.inflight * stallMs + growthMs
        if (tieScore < chosenScore) {
          chosen = s
          chosenScore = tieScore
          ties = 1
        } else if (tieScore === chosenScore && deps.random() * ++ties < 1) {
          chosen = s
        }
      }
      return chosen
    },
  }
}
