import type { PickContext, Picker } from '../balancer/picker.ts'
import { findPicker } from '../balancer/picker-registry.ts'
import { createLlmSignals, type LlmSignals } from '../llm/llm-signals.ts'
import { createEngine, type Engine } from '../sim/engine.ts'
import { parseProfileList } from '../sim/profiles.ts'
import { Endpoint } from '../upstream/endpoint.ts'
import type { Clock } from '../util/clock.ts'
import { createSeededRandom } from '../util/random.ts'
import {
  createEmulatedEngineMetrics,
  type EmulatedEngineMetrics,
} from './emulated-engine-metrics.ts'
import { type PolicyRunInput, replicaId } from './policy-run.ts'
import type { LoadSample, ReplicaDelta } from './run-record.ts'

/** N engines behind one picker, as an Aya upstream group would hold them, in virtual time. */
export interface DesFleet {
  readonly picker: Picker
  /** What Aya would learn from the traffic (tokens, output lengths, capacity), fed as in HTTP mode. */
  readonly llmSignals: LlmSignals
  readonly usesHashKey: boolean
  /** The eligible snapshot: every endpoint, one array identity for the whole run. */
  readonly endpoints: readonly Endpoint[]
  readonly metrics: EmulatedEngineMetrics
  engineOf(endpoint: Endpoint): Engine
  pick(ctx: PickContext): Endpoint | undefined
  /** Every replica's running + waiting and the fleet's cumulative hit rate, now. */
  sample(atMs: number): LoadSample
  /** Engine counters since the start (engines start empty). */
  replicaDeltas(): ReplicaDelta[]
  steps(): number[]
  close(): void
}

export function createDesFleet(input: PolicyRunInput, clock: Clock): DesFleet {
  return createDesRouters(input, clock, 1)[0]!
}

/**
 * `routers` router replicas in front of one set of engines, as an HA deployment runs them: each
 * router has its own endpoints (its own router-side accounting), its own policy state and its own
 * learned signals, and sees only the requests sent to it; the engines, and what their `/metrics`
 * say, are shared. Router 0 owns the engines: its `close` closes them.
 */
export function createDesRouters(input: PolicyRunInput, clock: Clock, routers: number): DesFleet[] {
  const definition = findPicker(input.policy)
  if (!definition) throw new Error(`unknown policy ${input.policy}`)
  const profiles = parseProfileList(input.profile, input.replicas)
  const engines = new Map<string, Engine>()
  profiles.forEach((profile, i) => {
    engines.set(replicaId(i), createEngine({ profile, seed: input.seed + i }, { clock }))
  })
  const metrics = createEmulatedEngineMetrics(
    { intervalMs: input.scrapeIntervalMs },
    { clock, engines },
  )
  const options = definition.optionsSchema.parse(input.policyOptions ?? {})
  return Array.from({ length: routers }, (_, router) => {
    const endpoints = Object.freeze(
      profiles.map((_profile, i) => {
        const id = replicaId(i)
        const url = `http://${id}.invalid`
        return new Endpoint({ id, url, origin: url, weight: 1 }, { clock })
      }),
    )
    const llmSignals = createLlmSignals({ clock })
    // Router 0 draws what a single router would, so one router runs exactly as before.
    const picker = definition.create(options, {
      clock,
      random: createSeededRandom(input.seed + router * 7919),
      engineMetrics: metrics,
      llmSignals,
    })
    return routerView(definition.usesHashKey, endpoints, picker, llmSignals, engines, metrics, {
      ownsEngines: router === 0,
    })
  })
}

function routerView(
  usesHashKey: boolean,
  endpoints: readonly Endpoint[],
  picker: Picker,
  llmSignals: LlmSignals,
  engines: ReadonlyMap<string, Engine>,
  metrics: EmulatedEngineMetrics,
  options: { readonly ownsEngines: boolean },
): DesFleet {
  const engineOf = (endpoint: Endpoint): Engine => engines.get(endpoint.id)!
  return {
    picker,
    llmSignals,
    usesHashKey,
    endpoints,
    metrics,
    engineOf,
    pick: (ctx) => picker.pick(endpoints, ctx),
    sample(atMs) {
      let queries = 0
      let hits = 0
      const load = endpoints.map((e) => {
        const s = engineOf(e).stats()
        queries += s.prefixCacheQueries
        hits += s.prefixCacheHits
        return s.running + s.waiting
      })
      return { atMs, load, hitRate: queries === 0 ? null : hits / queries }
    },
    replicaDeltas: () =>
      endpoints.map((e) => {
        const s = engineOf(e).stats()
        return {
          id: e.id,
          prefixQueries: s.prefixCacheQueries,
          prefixHits: s.prefixCacheHits,
          preemptions: s.preemptions,
        }
      }),
    steps: () => endpoints.map((e) => engineOf(e).stats().steps),
    close() {
      if (!options.ownsEngines) return
      metrics.close()
      for (const engine of engines.values()) engine.close()
    },
  }
}
