import { isDeepStrictEqual } from 'node:util'
import type { UpstreamConfig } from '../config/schema.ts'
import { endpointId } from '../config/validate.ts'
import type { PrefillPacer } from '../llm/prefill-pacer.ts'
import { Endpoint, type EndpointSpec, type LeaseCost } from '../upstream/endpoint.ts'
import type { LoadPeers } from '../upstream/load-peers.ts'
import type { Clock } from '../util/clock.ts'
import { canTakeFor } from './can-take.ts'
import { leaseCostFor } from './lease-cost.ts'
import { linkPacerToLoadPeers } from './pacer-load-link.ts'
import type { PickContext, Picker, PickerDeps } from './picker.ts'
import { findPicker } from './picker-registry.ts'

/**
 * An upstream group: its endpoints, who among them is eligible, and its picker. Membership is an
 * immutable snapshot that is swapped whole; endpoints that survive a swap keep their counters.
 */
export interface UpstreamGroup {
  readonly name: string
  readonly config: UpstreamConfig
  endpoints(): readonly Endpoint[]
  /** Enabled and not unhealthy: the snapshot pickers see. */
  eligible(): readonly Endpoint[]
  find(id: string): Endpoint | undefined
  select(ctx: PickContext): Endpoint | undefined
  /**
   * Whether the policy could place the request now within the TTFT SLO (true when it cannot
   * tell), on an endpoint other than `without` when that is given.
   */
  canTake(ctx: PickContext, ttftSloMs: number, without?: string): boolean
  /** The request waits in the group's admission queue: the policy is told (`Picker.queued`). */
  queued(ctx: PickContext): void
  /** The router-side cost of an LLM request placed on `endpoint` by `select(ctx)`. */
  leaseCost(endpoint: Endpoint, ctx: PickContext): LeaseCost | undefined
  /** The request placed by `select(ctx)` on `endpoint` never reached it (`Picker.unsent`). */
  unsent(endpoint: Endpoint, ctx: PickContext): void
  /** The policy's prefill pacer, if it paces LLM prompts into the endpoints. */
  pacer(): PrefillPacer | undefined
  /**
   * The server behind the endpoint restarted, and with it lost its prefix cache: the policy
   * forgets what it believed that endpoint cached, as for an id that moved to another server.
   * Learned rates stay: the hardware is the same.
   */
  forgetCache(endpointId: string): void
  /** Applies a new config for this group (reload): new picker, new membership. */
  update(config: UpstreamConfig): void
  /**
   * The upstream left the config (reload). Requests in flight finish where they are; prompts its
   * pacer holds go now rather than on timers nothing else will see.
   */
  retire(): void
}

export function createUpstreamGroup(
  name: string,
  initial: UpstreamConfig,
  deps: PickerDeps & {
    readonly clock: Clock
    /** The other router replicas' work on these endpoints, when a shared state store connects them. */
    readonly loadPeers?: LoadPeers | undefined
  },
): UpstreamGroup {
  let config = initial
  let all: readonly Endpoint[] = []
  let eligible: readonly Endpoint[] = []
  let byId = new Map<string, Endpoint>()
  const link = deps.loadPeers
    ? linkPacerToLoadPeers(
        deps.loadPeers,
        (id) => byId.get(id),
        () => picker,
      )
    : undefined
  const pickerDeps: PickerDeps = { ...deps, ...link?.pickerDeps }
  let picker: Picker = buildPicker(config, pickerDeps)
  // Health and drain flip endpoint flags without a config change; endpoints tell the group, which
  // rebuilds the snapshot lazily so pickers see a new array identity only on a real change.
  let dirty = true
  const endpointDeps = {
    clock: deps.clock,
    onEligibilityChange: () => {
      dirty = true
      paceOnlyEligible()
    },
    // Only with replicas to tell; an endpoint a reload replaced under the same id still ends its
    // leases, and only the member speaks for the id.
    onLoadChange: deps.loadPeers
      ? (endpoint: Endpoint) => {
          if (byId.get(endpoint.id) === endpoint) deps.loadPeers?.changed(endpoint)
        }
      : undefined,
  }
  const stopHearingLoad = link?.listen()

  const setMembership = (specs: readonly EndpointSpec[]) => {
    const next = new Map<string, Endpoint>()
    all = specs.map((spec) => {
      const existing = byId.get(spec.id)
      // Same server: the same object, so its in-flight accounting and the leases that will end
      // it carry over; a new weight is applied in place (the new snapshot makes pickers see it).
      let endpoint: Endpoint
      if (existing && existing.spec.url === spec.url) {
        existing.setWeight(spec.weight)
        endpoint = existing
      } else {
        // An id that names another server now: its learned rates are the old server's.
        if (existing) deps.llmSignals?.capacity.forget(spec.id)
        endpoint = new Endpoint(spec, endpointDeps)
      }
      next.set(spec.id, endpoint)
      return endpoint
    })
    for (const [id, endpoint] of byId) {
      if (next.get(id) !== endpoint) deps.loadPeers?.left(endpoint)
    }
    byId = next
    dirty = true
  }

  // Prompts held for an endpoint that health or drain took out go now, to be placed elsewhere,
  // rather than one predicted prefill at a time on the schedule of an engine that is gone.
  // The one place the pacer learns membership: `departed` lists ids whose lanes were the old
  // server's (a reload moved them), kept out even though their new endpoint is eligible.
  const paceOnlyEligible = (departed: ReadonlySet<string> = new Set()) => {
    const keep = new Set<string>()
    for (const endpoint of all) {
      if (isEligible(endpoint) && !departed.has(endpoint.id)) keep.add(endpoint.id)
    }
    picker.pacer?.retainOnly(keep, departed)
  }

  const refreshEligible = () => {
    if (!dirty) return
    dirty = false
    eligible = Object.freeze(all.filter(isEligible))
  }

  setMembership(specsFor(config))
  picker.retain?.(new Set(all.map((endpoint) => endpoint.id)))

  return {
    name,
    get config() {
      return config
    },
    endpoints: () => all,
    eligible() {
      refreshEligible()
      return eligible
    },
    find: (id) => byId.get(id),
    select(ctx) {
      refreshEligible()
      return picker.pick(eligible, ctx)
    },
    leaseCost: (endpoint, ctx) => leaseCostFor(picker, endpoint, ctx),
    unsent: (endpoint, ctx) => picker.unsent?.(endpoint, ctx),
    pacer: () => picker.pacer,
    canTake(ctx, ttftSloMs, without) {
      refreshEligible()
      return canTakeFor(picker, eligible, ctx, ttftSloMs, without)
    },
    queued(ctx) {
      refreshEligible()
      picker.queued?.(eligible, ctx)
    },
    forgetCache(endpointId) {
      if (!byId.has(endpointId)) return
      picker.retain?.(new Set(byId.keys()), new Set([endpointId]))
    },
    retire() {
      picker.close?.()
      stopHearingLoad?.()
      deps.loadPeers?.close()
    },
    update(next) {
      const specs = specsFor(next)
      // A picker depends only on its policy and options. Rebuilding it on an unrelated reload
      // would forget what it has learned and, for a pacing policy, start a second pacer that
      // cannot see the prompts the first one sent. An id that now names another server is
      // different: what the picker learned about it (cached prefixes) is about the old one, as
      // are its learned rates, which `setMembership` forgets. A picker that can forget one
      // endpoint forgets that one alone; the rest of the fleet keeps its state.
      const moved = specs.filter((spec) => {
        const existing = byId.get(spec.id)
        return existing !== undefined && existing.spec.url !== spec.url
      })
      const ids = new Set(specs.map((spec) => spec.id))
      if (
        next.policy !== config.policy ||
        !isDeepStrictEqual(next.policyOptions, config.policyOptions) ||
        (moved.length > 0 && picker.retain === undefined)
      ) {
        const replaced = picker
        picker = buildPicker(next, pickerDeps)
        // Prompts the old pacer still holds go now: nothing is dropped, and no timer outlives it.
        replaced.close?.()
      }
      config = next
      setMembership(specs)
      // Every member stays one, but what the picker learned of a moved one was the old server's.
      picker.retain?.(ids, new Set(moved.map((spec) => spec.id)))
      paceOnlyEligible(new Set(moved.map((spec) => spec.id)))
    },
  }
}

function isEligible(endpoint: Endpoint): boolean {
  return endpoint.enabled && endpoint.health !== 'unhealthy'
}

function buildPicker(config: UpstreamConfig, deps: PickerDeps): Picker {
  const definition = findPicker(config.policy)
  if (!definition) throw new Error(`unknown policy ${config.policy}`)
  return definition.create(config.policyOptions, deps)
}

export function specsFor(config: UpstreamConfig): EndpointSpec[] {
  return config.endpoints.map((endpoint) => {
    const url = new URL(endpoint.url)
    return {
      id: endpointId(endpoint),
      url: endpoint.url,
      origin: url.origin,
      weight: endpoint.weight,
    }
  })
}
