import { channel } from 'node:diagnostics_channel'
import { z } from 'zod'
import type { LlmRequest } from '../../llm/llm-request.ts'
import {
  createPrefixBlockIndex,
  hashPromptBlocks,
  type PrefixBlockIndex,
} from '../../llm/prefix-block-index.ts'
import type { Endpoint, LeaseCost } from '../../upstream/endpoint.ts'
import { isExcluded, type PickContext, type Picker, type PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createLeastRequestPicker } from './least-request.ts'

export const ayaOptionsSchema = z
  .object({
    /** Prefix-index granularity, characters (16 tokens × ~4 characters). */
    blockChars: z.int().min(8).max(4096).default(64),
    /** Longest prefix tracked, in blocks (64 × 8192 characters ≈ 131k tokens). */
    maxPrefixBlocks: z.int().min(1).default(8192),
    /** Fixed per-request overhead added to every TTFT prediction, ms. */
    overheadMs: z.number().min(0).default(5),
    /** Prefill rate assumed for an endpoint before it has answered anything, tokens/s. */
    priorPrefillTokensPerSec: z.number().positive().default(10_000),
    /** KV capacity assumed when the engine does not publish `cache_config_info`, tokens. */
    defaultKvCapacityTokens: z.int().positive().default(262_144),
    /** Most of the KV capacity new work may plan to fill before it waits instead. */
    kvHighWater: z.number().gt(0).max(1).default(0.9),
    /**
     * Candidates whose predicted TTFT is within this share (or `nearTieMs`) of the best are near
     * ties; two of them are drawn and the one with more cache room wins, so equal endpoints do not
     * herd onto one.
     */
    nearTieShare: z.number().min(0).max(1).default(0.1),
    nearTieMs: z.number().min(0).default(10),
    /**
     * How much of the prefill time a warm hit saves is credited to staying warm. 1 is the rule
     * "affinity holds until the warm TTFT exceeds the best cold one by more than the time saved".
     */
    affinityCredit: z.number().min(0).max(1000).default(1),
    mode: z.enum(['orig', 'cost']).default('orig'),
    decodeWeight: z.number().min(0).default(0),
    tieBy: z.enum(['kv', 'inflight']).default('kv'),
    fluid: z.boolean().default(false),
    minWeight: z.number().min(0).default(0),
    stepWeight: z.number().min(0).default(0),
    slowdown: z.boolean().default(false),
    coBatchWeight: z.number().min(0).default(0),
    floorMs: z.number().min(0).default(50),
    shrinkSamples: z.number().min(0).default(0),
    indexFactor: z.number().min(0.1).default(1),
    bandShare: z.number().min(0).default(0),
    coAbs: z.boolean().default(false),
    sloMs: z.number().min(0).default(0),
    itlNorm: z.boolean().default(false),
    bandMs: z.number().min(0).default(0),
    bandDecode: z.number().min(0).default(0),
    stepTokens: z.number().min(1).default(8192),
    /** Prompts shorter than this many blocks are placed by load alone. */
    minAffinityBlocks: z.int().min(1).default(2),
  })
  .strict()

export type AyaOptions = z.output<typeof ayaOptionsSchema>

/** Which rule placed a request: exported as a counter per branch, and in the debug decision log. */
export type AyaBranch = 'warm' | 'valve' | 'cold' | 'saturated' | 'no-llm'

export interface AyaCandidate {
  readonly endpoint: string
  readonly predictedTtftMs: number
  readonly hitTokens: number
  readonly kvOk: boolean
}

export interface AyaDecision {
  readonly policy: 'aya'
  readonly branch: AyaBranch
  readonly chosen: string
  readonly model: string
  readonly promptTokens: number
  readonly candidates: readonly AyaCandidate[]
}

/** Decisions are published here; the observability layer counts them and logs them at debug. */
export const ayaDecisionChannel = channel('aya:scheduler:decision')

interface Scored {
  endpoint: Endpoint
  hitTokens: number
  uncachedTokens: number
  prefillTokensPerSec: number
  predictedTtftMs: number
  kvRoom: number
  kvOk: boolean
  cost: number
}

/**
 * Aya's LLM scheduler. For each eligible endpoint it predicts the TTFT this request would see: the
 * prefill already queued there (router-side accounting, updated at dispatch, so a burst sees its
 * own earlier requests) plus the request's own uncached prefill after the prefix match, divided by
 * the endpoint's learned prefill rate. It then:
 *
 * - keeps a prompt on the endpoint holding most of its prefix while that endpoint's predicted TTFT
 *   is within the prefill time the hit saves of the best alternative (warm; a hit is throughput
 *   when prefill compute binds, so affinity is stickier than greedy TTFT);
 * - releases affinity once the warm endpoint is that much worse (the valve);
 * - places cold prompts, and released ones, among the near-best endpoints by power of two choices,
 *   preferring the one with more cache room, so new cache growth lands where it evicts least;
 * - leaves out endpoints whose KV headroom cannot take the prompt plus its predicted output, unless
 *   every endpoint is in that state (saturated: the least-bad is used, and the admission queue in
 *   front decides whether to wait).
 *
 * Engine metrics, when fresh, correct the KV picture (the larger of router-side and reported
 * usage); stale ones count as unknown, never as idle.
 */
export function createAyaPicker(options: AyaOptions, deps: PickerDeps): Picker {
  const indexes = new Map<string, PrefixBlockIndex>()
  const fallback = createLeastRequestPicker({ choiceCount: 2 }, deps)
  const scored: Scored[] = []
  const fluid = new Map<string, { tokens: number; atMs: number }>()
  const lanes = new Map<string, { items: number[]; head: number; sum: number }>()
  const laneOf = (endpoint: Endpoint) => {
    let lane = lanes.get(endpoint.id)
    if (!lane) { lane = { items: [], head: 0, sum: 0 }; lanes.set(endpoint.id, lane) }
    const P = endpoint.pendingPrefillTokens
    while (lane.head < lane.items.length && lane.sum > P) { lane.sum -= lane.items[lane.head]!; lane.head++ }
    if (lane.head > 64 && lane.head * 2 > lane.items.length) { lane.items = lane.items.slice(lane.head); lane.head = 0 }
    if (lane.head >= lane.items.length) { lane.items.length = 0; lane.head = 0; lane.sum = 0 }
    return lane
  }
  const backlogOf = (endpoint: Endpoint, rate: number): number => {
    if (!options.fluid) return endpoint.pendingPrefillTokens
    const now = deps.clock.now()
    let f = fluid.get(endpoint.id)
    if (!f) { f = { tokens: 0, atMs: now }; fluid.set(endpoint.id, f) }
    f.tokens = Math.min(endpoint.pendingPrefillTokens, Math.max(0, f.tokens - (rate * (now - f.atMs)) / 1000))
    f.atMs = now
    return f.tokens
  }
  // The cost the request just placed charges its endpoint: only the prompt it has to prefill.
  let lastPlacement: { ctx: PickContext; endpoint: Endpoint; cost: LeaseCost } | undefined

  const indexFor = (model: string) => {
    let index = indexes.get(model)
    if (!index) {
      index = createPrefixBlockIndex({ defaultCapacityBlocks: 1, evictTailFirst: true })
      indexes.set(model, index)
    }
    return index
  }

  const kvCapacityTokens = (endpoint: Endpoint): number => {
    const snapshot = deps.engineMetrics?.get(endpoint.id)
    if (snapshot?.numGpuBlocks !== undefined && snapshot.blockSize !== undefined) {
      return snapshot.numGpuBlocks * snapshot.blockSize
    }
    return options.defaultKvCapacityTokens
  }

  return {
    name: 'aya',
    pick(eligible, ctx) {
      const llm = ctx.llm
      if (!llm) return fallback.pick(eligible, ctx)
      const request = score(eligible, ctx, llm)
      if (scored.length === 0) return undefined
      const { hashes, index, charsPerToken, kvNeed, promptTokens, warm, anyKvOk } = request
      let bestTtft = Number.POSITIVE_INFINITY
      const usable = anyKvOk ? scored.filter((s) => s.kvOk) : scored
      for (const s of usable) if (s.predictedTtftMs < bestTtft) bestTtft = s.predictedTtftMs

      let chosen: Scored
      let branch: AyaBranch
      if (options.mode === 'cost') {
        let best = Number.POSITIVE_INFINITY
        let rateSum = 0
        for (const s of usable) rateSum += s.prefillTokensPerSec
        const meanRate = rateSum / usable.length
        let min1 = Number.POSITIVE_INFINITY, min2 = Number.POSITIVE_INFINITY
        for (const s of usable) { const b = s.endpoint.pendingPrefillTokens; if (b < min1) { min2 = min1; min1 = b } else if (b < min2) min2 = b }
        let minUncached = Number.POSITIVE_INFINITY
        for (const s of usable) minUncached = Math.min(minUncached, s.uncachedTokens)
        const ownS = (minUncached / meanRate) * 1000 + options.floorMs
        const predOut = Math.max(1, kvNeed - promptTokens)
        const decodeW = options.itlNorm ? (options.decodeWeight * 80) / predOut : options.sloMs > 0 ? options.decodeWeight * Math.max(0, 1 - bestTtft / options.sloMs) : options.decodeWeight
        for (const s of usable) {
          const b = s.endpoint.pendingPrefillTokens
          const others = b === min1 ? min2 : min1
          const dmin = b === min1 ? Math.max(0, Math.min(b + s.uncachedTokens, others) - min1) : 0
          s.cost = options.minWeight * (dmin / meanRate) * 1000
          if (b > 0) s.cost += options.stepWeight * (Math.min(s.uncachedTokens, options.stepTokens) / meanRate) * 1000
          s.cost +=
            s.predictedTtftMs +
            (s.uncachedTokens / meanRate) *
              1000 *
              (options.affinityCredit + decodeW * s.endpoint.inflight)
          if (options.slowdown) s.cost /= ownS
          if (options.coBatchWeight > 0) {
            const lane = laneOf(s.endpoint)
            const P = s.endpoint.pendingPrefillTokens
            if (P > 0) {
              const B = options.stepTokens
              const last = P % B
              if (last > 0) {
                const delayMs = (Math.min(s.uncachedTokens, B - last) / s.prefillTokensPerSec) * 1000
                // items ending inside the last step
                let pos = P
                let ext = 0
                for (let i = lane.items.length - 1; i >= lane.head && pos > P - last; i--) {
                  const size = lane.items[i]!
                  ext += options.coAbs ? delayMs : delayMs / ((size / meanRate) * 1000 + options.floorMs)
                  pos -= size
                }
                s.cost += options.coBatchWeight * ext * (options.slowdown || options.coAbs ? 1 : options.floorMs)
              }
            }
          }
          if (s.cost < best) best = s.cost
        }
        if (options.bandDecode > 0) {
          const lim = best + Math.max(options.bandMs, bestTtft * options.bandShare)
          let bb = Number.POSITIVE_INFINITY
          for (const s of usable) {
            if (s.cost > lim) { s.cost = Number.POSITIVE_INFINITY; continue }
            s.cost += options.bandDecode * s.endpoint.inflight * (s.uncachedTokens / meanRate) * 1000
            if (s.cost < bb) bb = s.cost
          }
          best = bb
        }
        const limit = best + Math.max(options.nearTieMs, best * options.nearTieShare)
        let count = 0
        for (const s of usable) if (s.cost <= limit) count++
        const nth = (n: number): Scored => {
          let left = n
          for (const s of usable) {
            if (s.cost > limit) continue
            if (left === 0) return s
            left--
          }
          return usable[0]!
        }
        const a = nth(Math.floor(deps.random() * count))
        const b = nth(Math.floor(deps.random() * count))
        chosen =
          options.tieBy === 'kv'
            ? b.kvRoom > a.kvRoom
              ? b
              : a
            : b.endpoint.inflight < a.endpoint.inflight
              ? b
              : a
        branch = warm && chosen === warm ? 'warm' : warm ? 'valve' : 'cold'
      } else if (warm && (warm.kvOk || !anyKvOk)) {
        const savedMs = (warm.hitTokens / warm.prefillTokensPerSec) * 1000 * options.affinityCredit
        if (warm.predictedTtftMs <= bestTtft + savedMs) {
          chosen = warm
          branch = 'warm'
        } else {
          chosen = placeCold(usable, bestTtft)
          branch = 'valve'
        }
      } else {
        chosen = placeCold(usable, bestTtft)
        branch = anyKvOk ? 'cold' : 'saturated'
      }

      if (options.coBatchWeight > 0) { const lane = laneOf(chosen.endpoint); lane.items.push(chosen.uncachedTokens); lane.sum += chosen.uncachedTokens }
      if (options.fluid) { const f = fluid.get(chosen.endpoint.id); if (f) f.tokens += chosen.uncachedTokens }
      // Optimistic insert: the engine will hold these blocks once it prefills them.
      const capacityBlocks = Math.floor(
        (kvCapacityTokens(chosen.endpoint) * charsPerToken * options.indexFactor) / options.blockChars,
      )
      index.add(chosen.endpoint.id, hashes, capacityBlocks)
      lastPlacement = {
        ctx,
        endpoint: chosen.endpoint,
        cost: { prefillTokens: chosen.uncachedTokens, kvTokens: kvNeed },
      }
      if (ayaDecisionChannel.hasSubscribers) publish(branch, chosen, llm.servedModel, promptTokens)
      return chosen.endpoint
    },
    canTake(eligible, ctx, ttftSloMs) {
      const llm = ctx.llm
      if (!llm) return eligible.length > 0
      score(eligible, ctx, llm)
      // An endpoint with nothing queued always can: waiting would not make the prompt shorter.
      return scored.some(
        (s) => s.kvOk && (s.predictedTtftMs <= ttftSloMs || s.endpoint.pendingPrefillTokens === 0),
      )
    },
    leaseCost(endpoint, ctx) {
      if (lastPlacement && lastPlacement.ctx === ctx && lastPlacement.endpoint === endpoint) {
        return lastPlacement.cost
      }
      return undefined
    },
  }

  /** Scores every eligible endpoint for the request into `scored`; returns the request's facts. */
  function score(eligible: readonly Endpoint[], ctx: PickContext, llm: LlmRequest) {
    const promptTokens = Math.max(1, llm.promptTokens)
    const charsPerToken = Math.max(1, llm.promptText.length / promptTokens)
    const fullChars = llm.promptText.length - (llm.promptText.length % options.blockChars)
    const hashes = hashPromptBlocks(
      llm.promptText.slice(0, fullChars),
      llm.servedModel,
      options.blockChars,
      options.maxPrefixBlocks,
    )
    const index = indexFor(llm.servedModel)
    const predictedOutput = deps.llmSignals
      ? deps.llmSignals.outputs.predict(
          { model: llm.servedModel, route: llm.routeKey },
          promptTokens,
          llm.maxTokens,
        ).mean
      : Math.min(llm.maxTokens ?? 256, 256)
    const kvNeed = promptTokens + predictedOutput
    scored.length = 0
    let pooledWork = 0
    let pooledN = 0
    if (options.shrinkSamples > 0 && deps.llmSignals) {
      for (const endpoint of eligible) {
        const c = deps.llmSignals.capacity.get(endpoint.id)
        pooledWork += c.prefillTokensPerSec * c.samples
        pooledN += c.samples
      }
    }
    const pooledRate = pooledN > 0 ? pooledWork / pooledN : options.priorPrefillTokensPerSec
    let warm: Scored | undefined
    let anyKvOk = false
    for (const endpoint of eligible) {
      if (isExcluded(endpoint, ctx)) continue
      const capacity = deps.llmSignals?.capacity.get(endpoint.id)
      let rate =
        capacity && capacity.samples > 0
          ? capacity.prefillTokensPerSec
          : options.priorPrefillTokensPerSec
      if (options.shrinkSamples > 0) {
        const n = capacity?.samples ?? 0
        rate = (n * rate + options.shrinkSamples * pooledRate) / (n + options.shrinkSamples)
      }
      const matchedBlocks =
        hashes.length >= options.minAffinityBlocks ? index.matchedBlocks(endpoint.id, hashes) : 0
      // A hit is counted in whole blocks and never covers the last token (it must be computed).
      const hitTokens = Math.min(
        promptTokens - 1,
        Math.floor((matchedBlocks * options.blockChars) / charsPerToken),
      )
      const uncachedTokens = promptTokens - hitTokens
      const predictedTtftMs =
        ((backlogOf(endpoint, rate) + uncachedTokens) / rate) * 1000 + options.overheadMs
      const capacityTokens = kvCapacityTokens(endpoint)
      const routerKv = endpoint.kvTokens / capacityTokens
      const snapshot = deps.engineMetrics?.get(endpoint.id)
      const usedShare = Math.max(routerKv, snapshot?.kvUsage ?? 0)
      const kvRoom = capacityTokens * (options.kvHighWater - usedShare)
      const kvOk = kvRoom >= kvNeed || endpoint.inflight === 0
      anyKvOk ||= kvOk
      const entry: Scored = {
        endpoint,
        hitTokens,
        uncachedTokens,
        prefillTokensPerSec: rate,
        predictedTtftMs,
        kvRoom,
        kvOk,
        cost: 0,
      }
      scored.push(entry)
      if (
        hitTokens > 0 &&
        (!warm ||
          hitTokens > warm.hitTokens ||
          (hitTokens === warm.hitTokens && predictedTtftMs < warm.predictedTtftMs))
      ) {
        warm = entry
      }
    }
    return { hashes, index, charsPerToken, kvNeed, promptTokens, warm, anyKvOk }
  }

  /** Power of two choices among the near-best: the one with more KV room wins. */
  function placeCold(usable: readonly Scored[], bestTtft: number): Scored {
    const limit = bestTtft + Math.max(options.nearTieMs, bestTtft * options.nearTieShare)
    let count = 0
    for (const s of usable) if (s.predictedTtftMs <= limit) count++
    const nth = (n: number): Scored => {
      let left = n
      for (const s of usable) {
        if (s.predictedTtftMs > limit) continue
        if (left === 0) return s
        left--
      }
      return usable[0]!
    }
    const a = nth(Math.floor(deps.random() * count))
    const b = nth(Math.floor(deps.random() * count))
    return b.kvRoom > a.kvRoom ? b : a
  }

  function publish(branch: AyaBranch, chosen: Scored, model: string, promptTokens: number): void {
    const decision: AyaDecision = {
      policy: 'aya',
      branch,
      chosen: chosen.endpoint.id,
      model,
      promptTokens,
      candidates: scored.map((s) => ({
        endpoint: s.endpoint.id,
        predictedTtftMs: Math.round(s.predictedTtftMs * 10) / 10,
        hitTokens: s.hitTokens,
        kvOk: s.kvOk,
      })),
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
