import { channel } from 'node:diagnostics_channel'
import { z } from 'zod'
import { createCacheGrowth } from '../../llm/cache-growth.ts'
import { kvCapacityTokensOf } from '../../llm/engine-snapshot.ts'
import type { LlmRequest } from '../../llm/llm-request.ts'
import { createOptimisticInserts, type InsertClaim } from '../../llm/optimistic-inserts.ts'
import { createPrefillPacer } from '../../llm/prefill-pacer.ts'
import { createPrefixBlockIndex, hashPromptBlocks } from '../../llm/prefix-block-index.ts'
import { createSessionTable } from '../../llm/session-table.ts'
import type { Endpoint, LeaseCost } from '../../upstream/endpoint.ts'
import { rendezvousPick } from '../../util/rendezvous.ts'
import { hashText53 } from '../../util/text-hash.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createLeastRequestPicker } from './least-request.ts'

export const ayaOptionsSchema = z
  .object({
    /** Prefix-index granularity, characters (16 tokens × ~4 characters). */
    blockChars: z.int().min(8).max(4096).default(64),
    /** Longest prefix tracked, in blocks (64 × 8192 characters ≈ 131k tokens). */
    maxPrefixBlocks: z.int().min(1).default(8192),
    /** Prompts shorter than this many blocks are not matched: they are placed by load alone. */
    minAffinityBlocks: z.int().min(1).default(2),
    /**
     * Requests that carry the route's session header (`sessionHeader`, default `x-session-id`)
     * and whose prompt the prefix index sees nowhere go to their session's last endpoint (or, for
     * a session this router has not placed yet, its rendezvous-hash home, the same on every router
     * replica) whenever it is a near tie for the best (see `interferenceSlackShare`): it may hold
     * context the index cannot see. It is a preference, never a hit credit, so a session id that spans
     * unrelated prompts cannot pile them onto one endpoint, and a saturated endpoint loses the
     * session. Where the index sees any of the prompt, its hits decide.
     */
    sessionAffinity: z.boolean().default(true),
    /** Sessions remembered, least recently used evicted. */
    maxSessions: z.int().min(1).default(65_536),
    /** Fixed per-request overhead added to every TTFT prediction, ms. */
    overheadMs: z.number().min(0).default(5),
    /** Prefill rate assumed when nothing has been learned (no LLM signals), tokens/s. */
    priorPrefillTokensPerSec: z.number().positive().default(10_000),
    /**
     * Relative noise of one response's evidence about an endpoint's prefill rate. Learned rates are
     * pooled across the fleet by empirical Bayes: an endpoint's estimate is shrunk toward the
     * fleet's in proportion to how much of the spread between endpoints this noise explains, so
     * identical replicas with a few noisy samples look identical, while a GPU that is really
     * slower shows as slower once its samples say so. 0 uses each estimate as learned.
     */
    rateNoise: z.number().min(0).max(10).default(0.5),
    /** KV capacity assumed when the engine does not publish `cache_config_info`, tokens. */
    defaultKvCapacityTokens: z.int().positive().default(262_144),
    /** Most of the KV capacity new work may plan to fill before it waits instead. */
    kvHighWater: z.number().gt(0).max(1).default(0.9),
    /**
     * Decode headroom: an endpoint whose streams are getting tokens slower than this (ms per
     * token over the last seconds, prefill stalls included) takes no new work while another has
     * room, and with admission configured the request waits instead. 0 turns the check off.
     */
    maxItlMs: z.number().min(0).default(0),
    /**
     * What a prompt token the fleet must prefill costs beyond this request's own TTFT, in units
     * of its prefill time: when prefill compute binds, every token a hit saves is throughput that
     * the requests behind it get back. A warm endpoint keeps the request while its predicted TTFT
     * is within affinityCredit × the hit's prefill time of the best cold one (its queue within
     * 1 + affinityCredit times it); past that the valve releases it. 0 is TTFT-greedy.
     */
    affinityCredit: z.number().min(0).max(1000).default(16),
    /**
     * Endpoints whose cost is within this share of the best predicted TTFT (or
     * `interferenceSlackMs`) of the best cost are near ties, decided by decode interference.
     */
    interferenceSlackShare: z.number().min(0).max(4).default(0.3),
    interferenceSlackMs: z.number().min(0).default(20),
    /**
     * Near ties are decided among this many of them drawn at random (power of d choices), so
     * routers that each see only their own traffic do not all herd onto the one that looks best;
     * 0 decides among every near tie.
     */
    nearTieChoices: z.int().min(0).max(64).default(2),
    /**
     * Among near ties, each request in flight on an endpoint is charged this share of the stall
     * the new prefill would impose on it (its uncached prefill time): prefill chunks run in the
     * same steps as every decode there, so the same prompt hurts fewer streams on a quieter
     * endpoint. 0 breaks near ties by cost alone.
     */
    decodeInterference: z.number().min(0).max(100).default(0.3),
    /**
     * Among near ties, a cold request (no endpoint holds more of it than the others) is charged
     * this many times its prefill stall, scaled by how fast the endpoint's cache has been growing
     * lately relative to the near ties drawn to decide among (`nearTieChoices`): new blocks evict an LRU's tail, and on an endpoint
     * whose cache churns fast that tail is young and likely to be asked for again. So cold growth
     * goes where it evicts the least valuable blocks (llm-d's no-hit-LRU idea). 0 turns it off.
     */
    coldGrowth: z.number().min(0).max(100).default(1),
    /** How long cache growth counts toward `coldGrowth`: it counts half after this long. */
    coldGrowthHalfLifeMs: z.number().positive().default(10_000),
    /**
     * Pace each endpoint's prompts: hold placed requests at the router and send them one prefill
     * at a time, shortest first with aging, just before the engine finishes the prefill it has.
     * Engines batch every waiting prompt into one step, so without pacing a short prompt that
     * lands with a long one waits for the whole shared step.
     */
    pacing: z.boolean().default(true),
    /** Pacing: send the next prompt this long before the current prefill is predicted to end. */
    pacingLeadMs: z.number().min(0).max(10_000).default(40),
    /** Pacing: how long shorter prompts may keep going ahead of a waiting one. */
    pacingAgingMs: z.number().min(0).max(600_000).default(300),
    /** Pacing: prompts go out together while those sent and still prefilling fit this many tokens. */
    pacingBatchTokens: z.int().min(0).default(8192),
    /**
     * Pacing: once this many prompts are held for an endpoint, the next (unless expected half
     * cached or more) is timed by when the engine should end the prefill sent, with those prompts
     * sharing its steps; with fewer, by the later estimate that takes them one after another,
     * which orders a held prompt against more arrivals. 0 always uses the shared-step estimate.
     */
    pacingBacklogPrompts: z.int().min(0).default(4),
  })
  .strict()

export type AyaOptions = z.output<typeof ayaOptionsSchema>

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
}

/** Counts the branch; the full decision is built only for its subscribers. */
function publishBranch(branch: AyaBranch): void {
  if (ayaBranchChannel.hasSubscribers) ayaBranchChannel.publish(BRANCH_DECISIONS[branch])
}

/** One endpoint's scores for the request being placed; entries are reused across picks. */
interface Scored {
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
  /** Prompt tokens a request in flight here already keeps in the engine's KV: not charged again. */
  pinnedTokens: number
  /** Ruled out by the SLO admission let the request through for (see `choose`). */
  sloCut: boolean
}

/**
 * Optimistic inserts tracked per endpoint for take-back: far more than prompts in flight or held
 * at once, so only ones sent long ago are forgotten.
 */
const MAX_TRACKED_INSERTS = 4096

/** Weight of one placement in the running mean of placed uncached prompts. */
const PLACED_SMOOTHING = 0.02

/** Weight of one placement in the running characters-per-token ratio. */
const CHARS_PER_TOKEN_SMOOTHING = 0.01

/** What stays true of a request while it waits: see `memos` in `createAyaPicker`. */
interface RequestMemo {
  readonly hashes: number[]
  readonly sessionKey: number | undefined
  /** Predicted when the request was first scored; a request waiting in the queue keeps it. */
  readonly predictedOutput: number
  /** Per endpoint: the index version the match was taken at, and the match (made on first use). */
  matched:
    | { readonly versions: Map<string, number>; readonly blocks: Map<string, number> }
    | undefined
  /** The last attempt's stake in the optimistic inserts where it was placed. */
  placed: InsertClaim | undefined
}

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
  const entries: Scored[] = []
  let count = 0
  // Per-decision scratch: which entries are near ties.
  const tieIndexes: number[] = []
  // The near-tie cost limit of the last `choose`, which `branchOf` reads.
  let nearTieLimitMs = Number.POSITIVE_INFINITY
  const growth = createCacheGrowth({ halfLifeMs: options.coldGrowthHalfLifeMs }, deps)
  // The uncached prompt of the requests this router places, smoothed: the size it assumes for a
  // prompt the engine reports waiting that it did not send.
  let meanPlacedUncached: number | undefined
  // Per-decision scratch, indexed like `eligible`: each endpoint's learned log-rate and samples.
  let logRates = new Float64Array(8)
  let rateSamples = new Float64Array(8)
  // What scoring learns about a request that does not change while it waits: kept for as long as
  // the request lives, so canTake and pick of one request share it, and so do the admission
  // queue's re-checks of every request it holds (up to `maxScan` of them each time). Without it
  // each re-check rehashed and re-matched the whole queue.
  const memos = new WeakMap<LlmRequest, RequestMemo>()
  // Per request context, since other requests are judged and placed while one awaits: the SLO the
  // admission queue asked `canTake` about (for its pick), and the cost its placement charges its
  // endpoint (only the prompt it has to prefill).
  const sloHints = new WeakMap<PickContext, number>()
  const placements = new WeakMap<PickContext, { endpoint: Endpoint; cost: LeaseCost }>()

  // One index for every model an endpoint serves: block hashes are scoped by served model, and
  // an engine's base model and its LoRA adapters share one KV pool, so their blocks evict each
  // other's there too. An index per model, each sized to the whole pool, would believe an
  // endpoint serving several adapters holds several times what it can.
  const index = createPrefixBlockIndex({
    defaultCapacityBlocks: 1,
    evictTailFirst: true,
    resizeOnCapacityChange: true,
  })
  const inserts = createOptimisticInserts(index, { maxPerEndpoint: MAX_TRACKED_INSERTS })

  // The running characters-per-token ratio of every prompt placed, whatever its model.
  let runningCharsPerToken: number | undefined
  // Index capacity is KV tokens in characters: sized with the running ratio, so one JSON or CJK
  // prompt (far fewer characters a token than prose) does not shrink the index and evict blocks
  // the engine still holds. One ratio for all models, since models with different ratios (an
  // adapter for SQL, one for prose) share an endpoint's index: a ratio each would resize it back
  // and forth, evicting at every shrink.
  const smoothedCharsPerToken = (charsPerToken: number): number => {
    const before = runningCharsPerToken
    runningCharsPerToken =
      before === undefined
        ? charsPerToken
        : before + CHARS_PER_TOKEN_SMOOTHING * (charsPerToken - before)
    return runningCharsPerToken
  }

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
        },
        {
          clock: deps.clock,
          // The policy's own prior until the endpoint has shown its rate, as scoring does.
          prefillTokensPerSec: (id) => {
            const estimate = deps.llmSignals?.capacity.get(id)
            return estimate !== undefined && estimate.samples > 0
              ? estimate.prefillTokensPerSec
              : options.priorPrefillTokensPerSec
          },
          decodeStepMs: (id) => deps.llmSignals?.capacity.get(id).decodeStepMs ?? 0,
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
          publishBranch('no-llm')
          if (ayaDecisionChannel.hasSubscribers) publishNoLlm(picked)
        }
        return picked
      }
      forgetFailedAttempt(llm, ctx)
      const facts = score(eligible, ctx, llm)
      if (count === 0) return undefined
      const warm = rankCosts(facts)
      const chosen = choose(sloHints.get(ctx), sessionEndpointOf(facts), warm)
      const branch = branchOf(facts, warm, chosen)

      place(chosen, facts, llm, ctx)
      publishBranch(branch)
      if (ayaDecisionChannel.hasSubscribers) {
        publish(branch, chosen, llm.servedModel, facts.promptTokens)
      }
      return chosen.endpoint
    },
    canTake(eligible, ctx, ttftSloMs) {
      const llm = ctx.llm
      if (!llm) return eligible.some((endpoint) => !isExcluded(endpoint, ctx))
      score(eligible, ctx, llm)
      sloHints.set(ctx, ttftSloMs)
      // An endpoint with no prefill queued always can: waiting would not make the prompt shorter.
      for (let i = 0; i < count; i++) {
        const s = entries[i]!
        if (s.roomOk && (s.predictedTtftMs <= ttftSloMs || s.endpoint.pendingPrefillTokens === 0)) {
          return true
        }
      }
      return false
    },
    queued(eligible, ctx) {
      const llm = ctx.llm
      if (!llm) return
      publishBranch('queue')
      // Scoring the candidates is for the full decision only: a queued request is re-scored
      // whenever the queue re-checks it anyway.
      if (!ayaDecisionChannel.hasSubscribers) return
      rankCosts(score(eligible, ctx, llm))
      publish('queue', undefined, llm.servedModel, Math.max(1, llm.promptTokens))
    },
    unsent(endpoint, ctx) {
      // The prompt never reached the endpoint: nothing of it is cached there.
      const memo = ctx.llm === undefined ? undefined : memos.get(ctx.llm)
      if (memo?.placed?.endpointId === endpoint.id) takeBackInsert(memo)
    },
    retain(ids) {
      index.retainOnly(ids)
      inserts.retainOnly(ids)
      growth.retainOnly(ids)
      pacer?.retainOnly(ids)
    },
    leaseCost(endpoint, ctx) {
      const placement = placements.get(ctx)
      if (placement?.endpoint === endpoint) return placement.cost
      // Bound without a pick (a sticky cookie chose the endpoint): scored and placed there all the
      // same, so its hit is charged as a hit, the pacer sees it warm, and its blocks enter the
      // index. Otherwise the whole prompt counts as prefill and the index forgets the conversation.
      const llm = ctx.llm
      if (!llm) return undefined
      forgetFailedAttempt(llm, ctx)
      const facts = score([endpoint], ctx, llm)
      if (count === 0) return undefined
      const chosen = entries[0]!
      const cost = place(chosen, facts, llm, ctx)
      publishBranch('bound')
      if (ayaDecisionChannel.hasSubscribers) {
        rankCosts(facts)
        publish('bound', chosen, llm.servedModel, facts.promptTokens)
      }
      return cost
    },
  }

  /**
   * A retry excludes the endpoint the last attempt went to: that attempt failed, and its
   * optimistic insert must not keep drawing the conversation back to the endpoint that never got
   * the prompt. Its first new block goes, and with it the chain after it (a match needs every
   * block from the root). Placing it there again restores it.
   */
  function forgetFailedAttempt(llm: LlmRequest, ctx: PickContext): void {
    const memo = memoOf(llm)
    if (memo.placed === undefined || ctx.exclude?.has(memo.placed.endpointId) !== true) return
    takeBackInsert(memo)
  }

  /** Removes the optimistic insert of the request's last placement. */
  function takeBackInsert(memo: RequestMemo): void {
    if (memo.placed === undefined) return
    inserts.release(memo.placed)
    memo.placed = undefined
  }

  /**
   * What a placement charges its endpoint: the uncached prompt as pending prefill, and as KV the
   * prompt plus predicted output, re-estimated as the response streams (generated so far plus the
   * output still expected given how far it has come), so a response that outruns its prediction
   * is charged for it. The part of the prompt a request in flight there already pins is shared in
   * the engine's cache and not charged again; the lease pins the prompt's blocks in turn.
   */
  function costOf(chosen: Scored, facts: RequestFacts, llm: LlmRequest): LeaseCost {
    const prefillTokens = chosen.uncachedTokens
    const kvTokens = facts.kvNeed - chosen.pinnedTokens
    // The prompt's blocks stay pinned in the engine while the request lives.
    const pinnedBlocks = facts.hashes.length > 0 ? facts.hashes : undefined
    const outputs = deps.llmSignals?.outputs
    if (!outputs) return { prefillTokens, kvTokens, pinnedBlocks }
    const key = { model: llm.servedModel, route: llm.routeKey }
    const { maxTokens } = llm
    const { promptTokens } = facts
    const promptKv = promptTokens - chosen.pinnedTokens
    // Several sequences share the prompt's KV and each grows its own.
    const sequences = llm.sequences ?? 1
    return {
      prefillTokens,
      kvTokens,
      pinnedBlocks,
      kvTokensAfter: (generated) =>
        promptKv +
        sequences * (generated + outputs.remaining(key, promptTokens, maxTokens, generated)),
    }
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
    const memo = memoOf(llm)
    const capacityBlocks = Math.floor(
      (chosen.capacityTokens * smoothedCharsPerToken(facts.charsPerToken)) / options.blockChars,
    )
    index.add(chosen.endpoint.id, facts.hashes, capacityBlocks)
    memo.placed = inserts.claim(chosen.endpoint.id, facts.hashes, chosen.matchedBlocks)
    if (chosen.uncachedTokens > 0) growth.grow(chosen.endpoint.id, chosen.uncachedTokens)
    if (facts.sessionKey !== undefined) {
      sessions?.record(facts.sessionKey, chosen.endpoint.id)
    }
    meanPlacedUncached =
      meanPlacedUncached === undefined
        ? chosen.uncachedTokens
        : meanPlacedUncached + PLACED_SMOOTHING * (chosen.uncachedTokens - meanPlacedUncached)
    const cost = costOf(chosen, facts, llm)
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
    return ((ahead + uncachedTokens) / rate) * 1000 + options.overheadMs
  }

  function memoOf(llm: LlmRequest): RequestMemo {
    const known = memos.get(llm)
    if (known) return known
    const fullChars = llm.promptText.length - (llm.promptText.length % options.blockChars)
    const all = hashPromptBlocks(
      llm.promptText.slice(0, fullChars),
      llm.servedModel,
      options.blockChars,
      options.maxPrefixBlocks,
    )
    const memo: RequestMemo = {
      hashes: all.length >= options.minAffinityBlocks ? all : [],
      sessionKey:
        sessions && llm.sessionKey !== undefined
          ? hashText53(`${llm.servedModel}\u0000${llm.routeKey}\u0000${llm.sessionKey}`)
          : undefined,
      predictedOutput:
        deps.llmSignals?.predictedOutput(llm) ??
        Math.min(llm.maxTokens ?? 256, 256) * (llm.sequences ?? 1),
      matched: undefined,
      placed: undefined,
    }
    memos.set(llm, memo)
    return memo
  }

  /** The endpoint's match for the prompt, recomputed only when its blocks may have changed. */
  function matchedBlocksOf(memo: RequestMemo, endpointId: string): number {
    if (memo.hashes.length === 0) return 0
    const version = index.version(endpointId)
    memo.matched ??= { versions: new Map(), blocks: new Map() }
    const { versions, blocks } = memo.matched
    if (versions.get(endpointId) === version) return blocks.get(endpointId)!
    const matched = index.matchedBlocks(endpointId, memo.hashes)
    versions.set(endpointId, version)
    blocks.set(endpointId, matched)
    return matched
  }

  /** Scores every eligible, non-excluded endpoint into `entries[0..count)`. */
  function score(eligible: readonly Endpoint[], ctx: PickContext, llm: LlmRequest): RequestFacts {
    const promptTokens = Math.max(1, llm.promptTokens)
    const charsPerToken = Math.max(1, llm.promptText.length / promptTokens)
    const memo = memoOf(llm)
    const { hashes, sessionKey } = memo
    const kvNeed = promptTokens + memo.predictedOutput

    // Learned rates, pooled: log-rates shrink toward the fleet's by the share of their spread
    // that sampling noise explains (empirical Bayes). One read of each estimate per decision.
    const capacity = deps.llmSignals?.capacity
    if (logRates.length < eligible.length) {
      logRates = new Float64Array(eligible.length * 2)
      rateSamples = new Float64Array(eligible.length * 2)
    }
    let pooledLog = Math.log(options.priorPrefillTokensPerSec)
    let spreadBeyondNoise = 0
    if (capacity) {
      let logSum = 0
      let samples = 0
      for (let i = 0; i < eligible.length; i++) {
        const estimate = capacity.get(eligible[i]!.id)
        logRates[i] = Math.log(estimate.prefillTokensPerSec)
        rateSamples[i] = estimate.samples
        logSum += logRates[i]! * estimate.samples
        samples += estimate.samples
      }
      if (samples > 0) {
        pooledLog = logSum / samples
        let spread = 0
        let noise = 0
        let sampled = 0
        for (let i = 0; i < eligible.length; i++) {
          if (rateSamples[i] === 0) continue
          spread += (logRates[i]! - pooledLog) ** 2
          noise += options.rateNoise ** 2 / rateSamples[i]!
          sampled++
        }
        spreadBeyondNoise = Math.max(0, (spread - noise) / sampled)
      }
    }

    count = 0
    let anyRoomOk = false
    // Any hit at all, even on a prefix every endpoint holds, leaves placement to the index. Letting
    // the session steer prompts that only share such a prefix cost the Mooncake conversation
    // replay 7 % of its goodput (600:1200, three seeds) for no TTFT gain.
    let indexSeesPrompt = false
    for (let i = 0; i < eligible.length; i++) {
      const endpoint = eligible[i]!
      if (isExcluded(endpoint, ctx)) continue
      let logRate = pooledLog
      if (capacity && rateSamples[i]! > 0) {
        const noise = options.rateNoise ** 2 / rateSamples[i]!
        const keep =
          spreadBeyondNoise + noise > 0 ? spreadBeyondNoise / (spreadBeyondNoise + noise) : 1
        logRate = pooledLog + keep * (logRates[i]! - pooledLog)
      }
      const rate = Math.exp(logRate)
      const matchedBlocks = matchedBlocksOf(memo, endpoint.id)
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
      const beyondOwn = snapshot
        ? snapshot.waiting - (endpoint.pendingPrefillRequests - (pacer?.heldFor(endpoint.id) ?? 0))
        : 0
      const foreignWaiting =
        snapshot && beyondOwn > 0
          ? Math.max(0, beyondOwn - endpoint.prefillsDoneSince(snapshot.atMs))
          : 0
      const kvRoom = capacityTokens * (options.kvHighWater - usedShare)
      // A prefix a request in flight here holds is shared in the engine's cache, not copied.
      const pinnedTokens =
        hashes.length === 0
          ? 0
          : Math.min(
              hitTokens,
              Math.floor(
                (endpoint.pinnedPrefixBlocks(hashes) * options.blockChars) / charsPerToken,
              ),
            )
      const kvOk = kvRoom >= kvNeed - pinnedTokens || endpoint.inflight === 0
      // An endpoint with nothing in flight has no streams to slow down, whatever it last saw.
      const itlMs = options.maxItlMs > 0 && endpoint.inflight > 0 ? endpoint.decodeItlMs : undefined
      const decodeOk = itlMs === undefined || itlMs <= options.maxItlMs
      anyRoomOk ||= kvOk && decodeOk

      let entry = entries[count]
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
          pinnedTokens: 0,
          churn: 0,
        }
        entries.push(entry)
      }
      count++
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
      entry.pinnedTokens = pinnedTokens
    }

    return {
      hashes,
      sessionKey,
      indexSeesPrompt,
      charsPerToken,
      promptTokens,
      kvNeed,
      anyRoomOk,
    }
  }

  /**
   * Each scored endpoint's cost (TTFT plus the fleet's cost of its uncached prefill), over the
   * endpoints that can take the request (all of them when none can); returns the usable endpoint
   * holding most of the prompt beyond what every one holds (the warm one), if any. Placing and
   * explaining need it; `canTake` does not.
   */
  function rankCosts(facts: RequestFacts): Scored | undefined {
    const { anyRoomOk } = facts
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
      s.costMs = s.predictedTtftMs + ((options.affinityCredit * s.uncachedTokens) / meanRate) * 1000
      if (s.hitTokens > sharedHitTokens && (!warm || s.hitTokens > warm.hitTokens)) warm = s
    }
    return warm
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
    for (let i = 0; i < count && last !== undefined; i++) {
      if (entries[i]!.endpoint.id === last) return last
    }
    return rendezvousPick(facts.sessionKey, count, (i) => entries[i]!.endpoint.id)
  }

  /**
   * Which rule moved a request off the endpoint holding its prefix, if one did: the valve (the
   * warm endpoint's cost, its queue less the hit's credit, was past the near ties, or it had no
   * room), the TTFT SLO admission let it through for, or a near-tie draw that the warm endpoint
   * lost.
   */
  function branchOf(facts: RequestFacts, warm: Scored | undefined, chosen: Scored): AyaBranch {
    if (!facts.anyRoomOk) return 'saturated'
    if (warm === undefined) return 'cold'
    if (chosen.hitTokens >= warm.hitTokens) return 'warm'
    if (warm.sloCut) return 'slo'
    return warm.costMs <= nearTieLimitMs ? 'tie' : 'valve'
  }

  /**
   * The lowest cost wins; endpoints within the slack of it are near ties. The session's endpoint
   * wins among them; otherwise `nearTieChoices` drawn at random are decided by the decode
   * interference they would suffer and, for a cold prompt, their cache churn, exact ties uniformly
   * at random (no allocation).
   */
  function choose(
    ttftSloMs: number | undefined,
    sessionEndpointId: string | undefined,
    warm: Scored | undefined,
  ): Scored {
    const isCold = warm === undefined
    // Admission let the request through because some endpoint can start it within its SLO: keep
    // to those, so the pick does what `canTake` promised.
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
    nearTieLimitMs = limit
    // The near ties, and the session's endpoint among them if it is one.
    let tieCount = 0
    let sessionTie: Scored | undefined
    for (let i = 0; i < count; i++) {
      const s = entries[i]!
      if (s.costMs > limit || s.sloCut) continue
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
        s.churn = growth.tokens(s.endpoint.id) / s.capacityTokens
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
      const growthMs = meanChurn > 0 ? options.coldGrowth * stallMs * (s.churn / meanChurn - 1) : 0
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
  }

  function publishNoLlm(chosen: Endpoint): void {
    const decision: AyaDecision = {
      policy: 'aya',
      branch: 'no-llm',
      chosen: chosen.id,
      model: '',
      promptTokens: 0,
      candidates: [],
    }
    ayaDecisionChannel.publish(decision)
  }

  /** `chosen` is undefined for the `queue` branch: the request waits, placed nowhere yet. */
  function publish(
    branch: AyaBranch,
    chosen: Scored | undefined,
    model: string,
    promptTokens: number,
  ): void {
    const candidates: AyaCandidate[] = []
    for (let i = 0; i < count; i++) {
      const s = entries[i]!
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
      chosen: chosen?.endpoint.id ?? '',
      model,
      promptTokens,
      candidates,
    }
    ayaDecisionChannel.publish(decision)
  }
}

export const ayaPicker = definePicker({
  name: 'aya',
  usesHashKey: false,
  usesEngineMetrics: true,
  optionsSchema: ayaOptionsSchema,
  create: (options, deps) => createAyaPicker(options, deps),
})
