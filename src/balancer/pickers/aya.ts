import { createCacheGrowth } from '../../llm/cache-growth.ts'
import { kvCapacityTokensOf } from '../../llm/engine-snapshot.ts'
import type { LlmRequest } from '../../llm/llm-request.ts'
import { createPrefillPacer } from '../../llm/prefill-pacer.ts'
import { createSessionTable } from '../../llm/session-table.ts'
import type { Endpoint, LeaseCost } from '../../upstream/endpoint.ts'
import { rendezvousPick } from '../../util/rendezvous.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { type AyaBranch, publishBranch, wantsDecisions } from './aya-decision.ts'
import { ayaLeaseCost } from './aya-lease-cost.ts'
import { createNearTieChooser } from './aya-near-tie.ts'
import { type AyaOptions, ayaOptionsSchema } from './aya-options.ts'
import { createPooledRates } from './aya-pooled-rates.ts'
import { createPrefixMemory, withoutIds } from './aya-prefix-memory.ts'
import { publishDecision, rankCosts, type Scored, type ScoredSet, scoredAt } from './aya-scored.ts'
import { createLeastRequestPicker } from './least-request.ts'

/** The candidates of a decision made without scoring (`no-llm`). */
const NO_CANDIDATES: ScoredSet = { entries: [], count: 0 }

/** Weight of one placement in the running mean of placed uncached prompts. */
const PLACED_SMOOTHING = 0.02

/** What scoring learned about the request itself. */
interface RequestFacts {
  hashes: readonly number[]
  /** The request's session, scoped to its model and route, when it named one and sessions are on. */
  sessionKey: number | undefined
  /** The prefix index sees some of the prompt on some endpoint. */
  indexSeesPrompt: boolean
  charsPerToken: number
  promptTokens: number
  /** KV the request needs where none of its prompt is pinned: its prompt plus predicted output. */
  kvNeed: number
  /** Some endpoint has KV and decode headroom. */
  anyRoomOk: boolean
  /** Hit tokens over the candidates (for the branch labels): least, most, most without room. */
  leastHitTokens: number
  mostHitTokens: number
  mostHitTokensWithoutRoom: number
}

/**
 * Aya's LLM scheduler. For each eligible endpoint it predicts the TTFT this request would see
 * there: the prefill already queued there (router-side accounting, updated at dispatch, so a burst
 * sees its own earlier requests) plus the request's own uncached prefill after the prefix match,
 * divided by the endpoint's learned prefill rate (pooled across the fleet by empirical Bayes, so a
 * few noisy early samples cannot tell identical replicas apart, while a slower GPU shows). Then:
 *
 * - cost = TTFT + affinityCredit × (uncached prefill ÷ the fleet's mean rate): a prefix hit saves
 *   the fleet work, so the endpoint holding the prefix keeps the request until its TTFT exceeds
 *   the best alternative's by more than affinityCredit × the prefill time the hit saves (its
 *   queue, by more than 1 + affinityCredit times it) — the saturation valve. A prefix every
 *   endpoint holds (a shared system prompt) cancels out.
 * - endpoints within a TTFT slack of the best cost are near ties; `nearTieChoices` of them drawn
 *   at random (power of two choices) are decided by decode interference (the new prefill stalls
 *   the fewest in-flight streams) plus, for a cold prompt, how fast each one's cache churns, exact
 *   ties at random. A session's endpoint (or home) among the near ties wins outright;
 * - endpoints without KV headroom for the prompt plus its predicted output are left out, unless
 *   all are (saturated: the least-bad is used; with admission configured the request waits);
 * - a request the admission queue let through (`canTake` said some endpoint starts it within the
 *   SLO) is placed on one of those endpoints.
 *
 * Cold prompts therefore go to the endpoint that serves them soonest, which is also where the new
 * cache growth competes with the least queued work. Engine metrics, when fresh, correct the KV
 * picture (the larger of router-side and reported usage); stale ones count as unknown, never idle.
 */
export function createAyaPicker(options: AyaOptions, deps: PickerDeps): Picker {
  const sessions = options.sessionAffinity
    ? createSessionTable({ maxSessions: options.maxSessions })
    : undefined
  const fallback = createLeastRequestPicker({ choiceCount: 2 }, deps)
  const set: ScoredSet = { entries: [], count: 0 }
  // The endpoints a pick scores (their ids, their places in `eligible`) and their prefix matches,
  // reused: the matches are taken in one walk of the prompt.
  const candidateIds: string[] = []
  const candidateAt: number[] = []
  const candidateMatches: number[] = []
  const growth = createCacheGrowth({ halfLifeMs: options.coldGrowthHalfLifeMs }, deps)
  const chooser = createNearTieChooser(options, { random: deps.random, growth })
  // The uncached prompt of the requests this router places, smoothed: the size it assumes for a
  // prompt the engine reports waiting that it did not send.
  let meanPlacedUncached: number | undefined
  const prefixes = createPrefixMemory(options, {
    predictedOutput: deps.llmSignals?.predictedOutput,
    peers: deps.prefixPeers,
  })
  const rates = createPooledRates({
    priorTokensPerSec: options.priorPrefillTokensPerSec,
    rateNoise: options.rateNoise,
  })
  // Per request context, since other requests are judged and placed while one awaits: the SLO the
  // admission queue asked `canTake` about (for its pick), and the cost its placement charges its
  // endpoint (only the prompt it has to prefill).
  const sloHints = new WeakMap<PickContext, number>()
  const placements = new WeakMap<PickContext, { endpoint: Endpoint; cost: LeaseCost }>()

  const kvCapacityTokens = (endpoint: Endpoint): number => {
    const layout = deps.engineMetrics?.kvLayout(endpoint.id)
    return layout ? kvCapacityTokensOf(layout) : options.defaultKvCapacityTokens
  }

  const pacer = options.pacing
    ? createPrefillPacer(
        {
          leadMs: options.pacingLeadMs,
          agingMs: options.pacingAgingMs,
          overheadMs: options.overheadMs,
          batchTokens: options.pacingBatchTokens,
          backlogPrompts: options.pacingBacklogPrompts,
          moveColdToIdle: options.pacingMoveToIdle,
        },
        {
          clock: deps.clock,
          // The policy's own prior until the endpoint has shown its rate, as scoring does.
          prefillTokensPerSec: (id) =>
            deps.llmSignals?.capacity.learned(id)?.prefillTokensPerSec ??
            options.priorPrefillTokensPerSec,
          decodeStepMs: (id) => deps.llmSignals?.capacity.get(id).decodeStepMs ?? 0,
          othersSent: deps.othersSentPrefill,
          onRelease: deps.onPrefillSent,
          // Counted as a decision of its own: the placement that follows is counted again.
          onMove: () => publishBranch('moved', deps.decisions),
        },
      )
    : undefined

  return {
    name: 'aya',
    pacer,
    pick(eligible, ctx) {
      const llm = ctx.llm
      if (!llm) {
        const picked = fallback.pick(eligible, ctx)
        if (picked) {
          publishBranch('no-llm', deps.decisions)
          if (wantsDecisions(deps.decisions))
            publishDecision('no-llm', NO_CANDIDATES, picked.id, '', 0, 0, deps.decisions)
        }
        return picked
      }
      const facts = score(eligible, ctx, llm)
      if (set.count === 0) return undefined
      const warm = rankCosts(set, facts.anyRoomOk, options.affinityCredit)
      const chosen = chooser.choose(set, sloHints.get(ctx), sessionEndpointOf(facts), warm)
      const branch = branchOf(facts, warm, chosen)

      place(chosen, facts, llm, ctx)
      publishBranch(branch, deps.decisions)
      if (wantsDecisions(deps.decisions)) {
        publishDecision(
          branch,
          set,
          chosen.endpoint.id,
          llm.servedModel,
          facts.promptTokens,
          prefixes.memoOf(llm).predictedOutput,
          deps.decisions,
        )
      }
      return chosen.endpoint
    },
    canTake(eligible, ctx, ttftSloMs) {
      const llm = ctx.llm
      if (!llm) return eligible.some((endpoint) => !isExcluded(endpoint, ctx))
      score(eligible, ctx, llm)
      sloHints.set(ctx, ttftSloMs)
      // An endpoint with no prefill queued always can: waiting would not make the prompt shorter.
      for (let i = 0; i < set.count; i++) {
        const s = set.entries[i]!
        if (s.roomOk && (s.predictedTtftMs <= ttftSloMs || s.endpoint.pendingPrefillTokens === 0)) {
          return true
        }
      }
      return false
    },
    queued(eligible, ctx) {
      const llm = ctx.llm
      if (!llm) return
      publishBranch('queue', deps.decisions)
      // Scoring the candidates is for the full decision only: a queued request is re-scored
      // whenever the queue re-checks it anyway.
      if (!wantsDecisions(deps.decisions)) return
      rankCosts(set, score(eligible, ctx, llm).anyRoomOk, options.affinityCredit)
      publishDecision(
        'queue',
        set,
        '',
        llm.servedModel,
        Math.max(1, llm.promptTokens),
        prefixes.memoOf(llm).predictedOutput,
        deps.decisions,
      )
    },
    unsent(endpoint, ctx) {
      // The prompt never reached the endpoint: nothing of it is cached there.
      const memo = ctx.llm === undefined ? undefined : prefixes.knownMemo(ctx.llm)
      if (memo?.placed?.endpointId === endpoint.id) prefixes.takeBack(memo)
    },
    // The pacer's membership is the group's to tell (eligibility as well as reloads).
    retain(ids, forget) {
      prefixes.retainOnly(ids, forget)
      growth.retainOnly(withoutIds(ids, forget))
    },
    // What it holds open: the pacer's timers (its held prompts go at once, nothing dropped) and
    // the other routers' announcements.
    close() {
      pacer?.close()
      prefixes.close()
    },
    leaseCost(endpoint, ctx) {
      const placement = placements.get(ctx)
      if (placement?.endpoint === endpoint) return placement.cost
      // Bound without a pick (a sticky cookie chose the endpoint): scored and placed there all the
      // same, so its hit is charged as a hit, the pacer sees it warm, and its blocks enter the
      // index. Otherwise the whole prompt counts as prefill and the index forgets the conversation.
      const llm = ctx.llm
      if (!llm) return undefined
      const facts = score([endpoint], ctx, llm)
      if (set.count === 0) return undefined
      const chosen = set.entries[0]!
      const cost = place(chosen, facts, llm, ctx)
      publishBranch('bound', deps.decisions)
      if (wantsDecisions(deps.decisions)) {
        rankCosts(set, facts.anyRoomOk, options.affinityCredit)
        publishDecision(
          'bound',
          set,
          chosen.endpoint.id,
          llm.servedModel,
          facts.promptTokens,
          prefixes.memoOf(llm).predictedOutput,
          deps.decisions,
        )
      }
      return cost
    },
  }

  /**
   * Commits a placement: the optimistic insert into the prefix index, cache growth, the session's
   * endpoint, and the cost its lease charges.
   */
  function place(
    chosen: Scored,
    facts: RequestFacts,
    llm: LlmRequest,
    ctx: PickContext,
  ): LeaseCost {
    // Optimistic insert: the engine will hold these blocks once it prefills them. What it adds,
    // and the unconfirmed inserts it matched through, are remembered, to be taken back if this
    // attempt fails.
    prefixes.place(
      prefixes.memoOf(llm),
      chosen.endpoint.id,
      chosen.matchedBlocks,
      chosen.capacityTokens,
      facts.charsPerToken,
    )
    if (chosen.uncachedTokens > 0) growth.grow(chosen.endpoint.id, chosen.uncachedTokens)
    if (facts.sessionKey !== undefined) {
      sessions?.record(facts.sessionKey, chosen.endpoint.id)
    }
    meanPlacedUncached =
      meanPlacedUncached === undefined
        ? chosen.uncachedTokens
        : meanPlacedUncached + PLACED_SMOOTHING * (chosen.uncachedTokens - meanPlacedUncached)
    const cost = ayaLeaseCost(
      chosen,
      { ...facts, llm, blockTokens: options.blockChars / facts.charsPerToken },
      deps.llmSignals?.outputs,
    )
    placements.set(ctx, { endpoint: chosen.endpoint, cost })
    return cost
  }

  /** The queue ahead in tokens plus this prompt's own uncached part, at the endpoint's rate. */
  function predictTtftMs(
    endpoint: Endpoint,
    uncachedTokens: number,
    rate: number,
    foreignPrefillTokens: number,
  ): number {
    const ahead = endpoint.pendingPrefillTokens + foreignPrefillTokens
    // An endpoint that fails at once never has prefill pending: without its failures counted it
    // would predict the lowest TTFT of all (the black hole). The first token that counts is a
    // successful response's, `attemptsPerSuccess` tries away; 1 on a healthy endpoint.
    return (
      (((ahead + uncachedTokens) / rate) * 1000 + options.overheadMs) * endpoint.attemptsPerSuccess
    )
  }

  /** Scores every eligible, non-excluded endpoint into `set.entries[0..set.count)`. */
  function score(eligible: readonly Endpoint[], ctx: PickContext, llm: LlmRequest): RequestFacts {
    const promptTokens = Math.max(1, llm.promptTokens)
    const charsPerToken = Math.max(1, llm.promptText.length / promptTokens)
    const memo = prefixes.memoOf(llm)
    const { hashes, sessionKey } = memo
    const kvNeed = promptTokens + memo.predictedOutput

    // Learned rates, pooled across the fleet (empirical Bayes): one read of each estimate.
    const capacity = deps.llmSignals?.capacity
    rates.pool(eligible, capacity)

    set.count = 0
    let anyRoomOk = false
    // Any hit at all, even on a prefix every endpoint holds, leaves placement to the index. Letting
    // the session steer prompts that only share such a prefix cost the Mooncake conversation
    // replay 7 % of its goodput (600:1200, three seeds) for no TTFT gain.
    let indexSeesPrompt = false
    let leastHitTokens = Number.POSITIVE_INFINITY
    let mostHitTokens = 0
    let mostHitTokensWithoutRoom = 0
    candidateIds.length = 0
    candidateAt.length = 0
    for (let i = 0; i < eligible.length; i++) {
      if (isExcluded(eligible[i]!, ctx)) continue
      candidateIds.push(eligible[i]!.id)
      candidateAt.push(i)
    }
    prefixes.matchEach(memo, candidateIds, candidateMatches)
    for (let c = 0; c < candidateAt.length; c++) {
      const i = candidateAt[c]!
      const endpoint = eligible[i]!
      const rate = rates.rateOf(i)
      const matchedBlocks = candidateMatches[c]!
      // A hit is counted in whole blocks and never covers the last token (it must be computed).
      const hitTokens = Math.min(
        promptTokens - 1,
        Math.floor((matchedBlocks * options.blockChars) / charsPerToken),
      )
      if (matchedBlocks > 0) indexSeesPrompt = true
      const uncachedTokens = promptTokens - hitTokens
      const capacityTokens = kvCapacityTokens(endpoint)
      const snapshot = deps.engineMetrics?.get(endpoint.id)
      const usedShare = Math.max(endpoint.kvTokens / capacityTokens, snapshot?.kvUsage ?? 0)
      // The closed loop on the queue: prompts a fresh scrape shows waiting at the engine beyond
      // any this router could have had waiting there when it was taken (another router's, or
      // clients that bypass it) are prefill ahead of this one, at the size of the prompts this
      // router places. Its prompts the pacer still holds are leased but were never there.
      const engineWaiting = snapshot?.waiting
      const beyondOwn =
        engineWaiting !== undefined
          ? engineWaiting - (endpoint.pendingPrefillRequests - (pacer?.heldFor(endpoint.id) ?? 0))
          : 0
      const foreignWaiting =
        snapshot && beyondOwn > 0
          ? Math.max(0, beyondOwn - endpoint.prefillsDoneSince(snapshot.atMs))
          : 0
      const kvRoom = capacityTokens * (options.kvHighWater - usedShare)
      // A prefix a request in flight here holds is shared in the engine's cache, not copied. The
      // walk over pinned blocks runs only when it can decide, and no further than the match.
      const kvOk =
        endpoint.inflight === 0 ||
        kvRoom >= kvNeed ||
        (matchedBlocks > 0 &&
          kvRoom >=
            kvNeed -
              Math.min(
                hitTokens,
                Math.floor(
                  (endpoint.pinnedPrefixBlocks(hashes, matchedBlocks) * options.blockChars) /
                    charsPerToken,
                ),
              ))
      // An endpoint with nothing in flight has no streams to slow down, whatever it last saw.
      const itlMs = options.maxItlMs > 0 && endpoint.inflight > 0 ? endpoint.decodeItlMs : undefined
      const decodeOk = itlMs === undefined || itlMs <= options.maxItlMs
      anyRoomOk ||= kvOk && decodeOk
      if (hitTokens < leastHitTokens) leastHitTokens = hitTokens
      if (hitTokens > mostHitTokens) mostHitTokens = hitTokens
      if (!(kvOk && decodeOk) && hitTokens > mostHitTokensWithoutRoom) {
        mostHitTokensWithoutRoom = hitTokens
      }

      const entry = scoredAt(set, set.count++, endpoint)
      entry.endpoint = endpoint
      entry.matchedBlocks = matchedBlocks
      entry.capacityTokens = capacityTokens
      entry.hitTokens = hitTokens
      entry.uncachedTokens = uncachedTokens
      entry.prefillTokensPerSec = rate
      entry.predictedTtftMs = predictTtftMs(
        endpoint,
        uncachedTokens,
        rate,
        foreignWaiting * (meanPlacedUncached ?? uncachedTokens),
      )
      entry.kvOk = kvOk
      entry.decodeOk = decodeOk
      entry.roomOk = kvOk && decodeOk
      entry.sloCut = false
      entry.nearTie = false
    }

    return {
      hashes,
      sessionKey,
      indexSeesPrompt,
      charsPerToken,
      promptTokens,
      kvNeed,
      anyRoomOk,
      leastHitTokens,
      mostHitTokens,
      mostHitTokensWithoutRoom,
    }
  }

  /**
   * The endpoint a session should go to on a near tie, when the prefix index sees none of the
   * prompt (evicted, or context the router never saw): its last turn's, or, for a session this
   * router has not placed yet (its first turn, or turns another router replica placed), its
   * rendezvous-hash home, which every replica computes alike, so the turns they each place meet
   * on one endpoint without shared state. Where the index sees the prompt its hits know better.
   * Going home also where the index sees only a prefix every endpoint holds helped two routers
   * (conversation hits 16.6 to 17.9 %) but cost one router 5-10 % of its goodput, so it does not.
   */
  function sessionEndpointOf(facts: RequestFacts): string | undefined {
    if (facts.indexSeesPrompt || facts.sessionKey === undefined || sessions === undefined) {
      return undefined
    }
    // Its last endpoint while that is a candidate; once it is gone (removed, unhealthy, failed
    // this request), the home, so the session is still kept together.
    const last = sessions.get(facts.sessionKey)
    for (let i = 0; i < set.count && last !== undefined; i++) {
      if (set.entries[i]!.endpoint.id === last) return last
    }
    return rendezvousPick(facts.sessionKey, set.count, (i) => set.entries[i]!.endpoint.id)
  }

  /**
   * Which rule moved a request off the endpoint holding its prefix, if one did: the valve (the
   * warm endpoint's cost, its queue less the hit's credit, was past the near ties, or it had no
   * room), the TTFT SLO admission let it through for, or a near-tie draw that the warm endpoint
   * lost.
   */
  function branchOf(facts: RequestFacts, warm: Scored | undefined, chosen: Scored): AyaBranch {
    if (!facts.anyRoomOk) return 'saturated'
    // The labels follow docs/llm-routing.md over every candidate, with room or not; `warm` (the
    // warmest with room, which the choice used) only tells why a warmer one lost.
    if (facts.mostHitTokens <= facts.leastHitTokens) return 'cold'
    if (chosen.hitTokens >= facts.mostHitTokens) return 'warm'
    // The warmest was left out for want of KV or decode room: given up, as the valve gives it up.
    if (facts.mostHitTokensWithoutRoom === facts.mostHitTokens) return 'valve'
    if (warm === undefined) return 'cold'
    if (warm.sloCut) return 'slo'
    return warm.nearTie ? 'tie' : 'valve'
  }
}

export const ayaPicker = definePicker({
  name: 'aya',
  hashKey: 'ignored',
  usesEngineMetrics: true,
  optionsSchema: ayaOptionsSchema,
  create: (options, deps) => createAyaPicker(options, deps),
})
