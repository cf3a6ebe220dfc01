import { linkPacerToLoadPeers } from '../balancer/pacer-load-link.ts'
import type { PickContext, Picker } from '../balancer/picker.ts'
import { findPicker } from '../balancer/picker-registry.ts'
import { createLlmSignals, type LlmSignals } from '../llm/llm-signals.ts'
import type { PrefillPacer } from '../llm/prefill-pacer.ts'
import { createPrefixPeers } from '../llm/prefix-peers.ts'
import { createEngine, type Engine } from '../sim/engine.ts'
import type { StepInfo } from '../sim/engine-types.ts'
import { parseProfileList } from '../sim/profiles.ts'
import { Endpoint } from '../upstream/endpoint.ts'
import { createLoadPeers } from '../upstream/load-peers.ts'
import type { Clock } from '../util/clock.ts'
import { createSeededRandom } from '../util/random.ts'
import { createDesPubSub } from './des-pubsub.ts'
import {
  createEmulatedEngineMetrics,
  type EmulatedEngineMetrics,
} from './emulated-engine-metrics.ts'
import { type PolicyRunInput, replicaId } from './policy-run.ts'
import type { LoadSample, ReplicaDelta } from './run-record.ts'

/**
 * One Aya router in front of the fleet, in virtual time: its own endpoints (its own router-side
 * accounting), its own policy state and its own learned signals, as an upstream group holds them.
 */
export interface DesRouter {
  readonly picker: Picker
  /** What Aya would learn from the traffic (tokens, output lengths, capacity), fed as in HTTP mode. */
  readonly llmSignals: LlmSignals
  readonly usesHashKey: boolean
  /** The eligible snapshot: every endpoint, one array identity for the whole run. */
  readonly endpoints: readonly Endpoint[]
  engineOf(endpoint: Endpoint): Engine
  pick(ctx: PickContext): Endpoint | undefined
}

/**
 * What the engines did while a router held prompts for them (`PrefillPacer`): a step planned with
 * prompts held is one the pacer chose to feed; with no prefill, or with little of its token budget
 * used, it is throughput the holding cost. The held count is read when a step ends, which is when
 * the engine plans the next; a step started from idle is judged by the count at the last step's
 * end, and time an engine sits idle while prompts are held is not counted.
 */
export interface PacingStats {
  /** Engine steps planned while some router held prompts for that engine. */
  readonly heldSteps: number
  /** Of those, steps with no prefill at all. */
  readonly starvedSteps: number
  /** Of those, steps with prefill that used under 90 % of the engine's token budget. */
  readonly shortSteps: number
  /** Budget tokens left unused in the held steps. */
  readonly unusedBudgetTokens: number
}

/** N engines, what their `/metrics` say, and the routers in front of them. */
export interface DesFleet {
  readonly metrics: EmulatedEngineMetrics
  /**
   * The routers, at least one. An HA deployment runs several that each see only the requests sent
   * to them; the engines and their metrics are shared.
   */
  readonly routers: readonly DesRouter[]
  /** Every replica's running + waiting and the fleet's cumulative hit rate, now. */
  sample(atMs: number): LoadSample
  /** Engine counters since the start (engines start empty). */
  replicaDeltas(): ReplicaDelta[]
  steps(): number[]
  /** Undefined when no router paces prompts. */
  pacing(): PacingStats | undefined
  close(): void
}

/** Redis pub/sub's delivery between routers on one LAN, rounded up. */
const SHARED_STATE_DELAY_MS = 1

/** A step that fills less of its budget than this is short. */
const SHORT_STEP_SHARE = 0.9

export function createDesFleet(input: PolicyRunInput, clock: Clock): DesFleet {
  const routers = input.routers ?? 1
  const definition = findPicker(input.policy)
  if (!definition) throw new Error(`unknown policy ${input.policy}`)
  const profiles = parseProfileList(input.profile, input.replicas)
  const ids = profiles.map((_profile, i) => replicaId(i))
  const engines = new Map<string, Engine>()
  const pacing = { heldSteps: 0, starvedSteps: 0, shortSteps: 0, unusedBudgetTokens: 0 }
  // Prompts held for each replica when its running step was planned (at the end of the last one).
  const heldAtPlan = new Map<string, number>()
  // Filled once the routers exist; engines report steps only after requests arrive.
  const pacers: PrefillPacer[] = []
  const heldFor = (id: string): number => {
    let held = 0
    for (const pacer of pacers) held += pacer.heldFor(id)
    return held
  }
  for (const [i, profile] of profiles.entries()) {
    const id = ids[i]!
    const budget = profile.maxNumBatchedTokens
    const observer = {
      step(info: StepInfo) {
        if ((heldAtPlan.get(id) ?? 0) > 0) {
          const used = info.prefillTokens + info.decodeSeqs
          pacing.heldSteps++
          if (info.prefillTokens === 0) pacing.starvedSteps++
          else if (used < SHORT_STEP_SHARE * budget) pacing.shortSteps++
          pacing.unusedBudgetTokens += Math.max(0, budget - used)
        }
        heldAtPlan.set(id, heldFor(id))
      },
    }
    engines.set(id, createEngine({ profile, seed: input.seed + i }, { clock, observer }))
  }
  const engineOf = (endpoint: Endpoint): Engine => engines.get(endpoint.id)!
  const metrics = createEmulatedEngineMetrics(
    { intervalMs: input.scrapeIntervalMs },
    { clock, engines },
  )
  const options = definition.optionsSchema.parse(input.policyOptions ?? {})
  const shared =
    input.sharedState && routers > 1
      ? createDesPubSub({ delayMs: SHARED_STATE_DELAY_MS }, { clock })
      : undefined
  const routerViews = Array.from({ length: routers }, (_, router): DesRouter => {
    // As `state: { store: redis }` links Aya replicas: their in-flight work and prefix indexes.
    const loadPeers = shared
      ? createLoadPeers({ channel: 'load:fleet' }, { state: shared, clock })
      : undefined
    const endpoints = Object.freeze(
      ids.map((id) => {
        const url = `http://${id}.invalid`
        return new Endpoint(
          { id, url, origin: url, weight: 1 },
          { clock, onLoadChange: loadPeers?.changed },
        )
      }),
    )
    const byId = new Map(endpoints.map((endpoint) => [endpoint.id, endpoint]))
    const link = loadPeers
      ? linkPacerToLoadPeers(
          loadPeers,
          (id) => byId.get(id),
          () => picker,
        )
      : undefined
    const llmSignals = createLlmSignals({ clock })
    // Router 0 draws what a single router would, so one router runs exactly as before.
    const picker = definition.create(options, {
      clock,
      random: createSeededRandom(input.seed + router * 7919),
      engineMetrics: metrics,
      llmSignals,
      prefixPeers: shared
        ? createPrefixPeers({ channel: 'prefix:fleet' }, { state: shared })
        : undefined,
      ...link?.pickerDeps,
    })
    link?.listen()
    picker.retain?.(new Set(ids))
    return {
      picker,
      llmSignals,
      usesHashKey: definition.hashKey === 'required',
      endpoints,
      engineOf,
      pick: (ctx) => picker.pick(endpoints, ctx),
    }
  })
  for (const router of routerViews) if (router.picker.pacer) pacers.push(router.picker.pacer)
  const statsOf = () => ids.map((id) => ({ id, ...engines.get(id)!.stats() }))
  return {
    metrics,
    routers: routerViews,
    sample(atMs) {
      let queries = 0
      let hits = 0
      const load = statsOf().map((s) => {
        queries += s.prefixCacheQueries
        hits += s.prefixCacheHits
        return s.running + s.waiting
      })
      return { atMs, load, hitRate: queries === 0 ? null : hits / queries }
    },
    replicaDeltas: () =>
      statsOf().map((s) => ({
        id: s.id,
        prefixQueries: s.prefixCacheQueries,
        prefixHits: s.prefixCacheHits,
        preemptions: s.preemptions,
      })),
    steps: () => statsOf().map((s) => s.steps),
    pacing: () => (pacers.length > 0 ? { ...pacing } : undefined),
    close() {
      metrics.close()
      for (const engine of engines.values()) engine.close()
    },
  }
}
