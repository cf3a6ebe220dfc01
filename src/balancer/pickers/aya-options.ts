import { z } from 'zod'

/** The `aya` policy's options (`policyOptions`); docs/llm-routing.md has the table. */
export const ayaOptionsSchema = z
  .object({
    /** Prefix-index granularity, characters (16 tokens × ~4 characters). */
    blockChars: z.int().min(8).max(4096).default(64),
    /** Longest prefix tracked, in blocks (64 × 8192 characters ≈ 131k tokens). */
    maxPrefixBlocks: z.int().min(1).max(65_536).default(8192),
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
    /**
     * Share the prefix index with the other Aya replicas in front of the same upstream, through
     * the shared state's pub/sub (`state: { store: redis }`): each announces where it sends
     * prompts, so a conversation is warm wherever its next turn lands. Without a shared store
     * there is nobody to share with and this does nothing.
     */
    sharePrefixIndex: z.boolean().default(true),
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
    /**
     * Pacing: when an engine has none of this router's prefill left, the cold prompt held longest
     * for another engine, still busy, is placed again away from it. Held shortest first, a long
     * cold prompt can wait behind the short ones that keep arriving at its engine while another
     * engine goes idle; a cold prompt owes its engine nothing.
     */
    pacingMoveToIdle: z.boolean().default(true),
  })
  .strict()
  .superRefine((options, ctx) => {
    // A prompt is hashed up to maxPrefixBlocks blocks: past it, no prompt would ever have
    // enough to be matched, and the prefix index would silently go unused.
    if (options.minAffinityBlocks <= options.maxPrefixBlocks) return
    ctx.addIssue({
      code: 'custom',
      path: ['minAffinityBlocks'],
      message: `expected at most maxPrefixBlocks (${options.maxPrefixBlocks}): no prompt is hashed past it, so none would ever be matched`,
    })
  })

export type AyaOptions = z.output<typeof ayaOptionsSchema>
