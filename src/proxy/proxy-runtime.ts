import { isDeepStrictEqual } from 'node:util'
import type { DecisionSink } from '../balancer/pickers/aya-decision.ts'
import type { UpstreamGroup } from '../balancer/upstream-group.ts'
import { createUpstreamGroup } from '../balancer/upstream-group.ts'
import type { Config, RouteConfig, TimeoutsConfig, UpstreamConfig } from '../config/schema.ts'
import type { EngineMetricsSource } from '../llm/engine-snapshot.ts'
import type { LlmSignals } from '../llm/llm-signals.ts'
import { createModelRegistry, type ModelRegistry } from '../llm/model-registry.ts'
import type { PrefixPeers } from '../llm/prefix-peers.ts'
import type { StateStore } from '../state/state-store.ts'
import type { LoadPeers } from '../upstream/load-peers.ts'
import type { Clock } from '../util/clock.ts'
import type { Random } from '../util/random.ts'
import { createGroupAdmission, type GroupAdmission } from './group-admission.ts'
import { createKeyExtractor, type KeySource } from './key-selector.ts'
import { createSplitChooser } from './route-actions.ts'
import { type CompiledRoute, createRouteTable, type RouteTable } from './route-table.ts'
import { createStickyCookie, defaultStickyCookieName } from './sticky-cookie.ts'
import { createStickyHeader, type StickyBinding } from './sticky-header.ts'

/** What the data plane needs for one upstream group under one config snapshot. */
export interface UpstreamRuntime {
  readonly name: string
  readonly group: UpstreamGroup
  readonly timeouts: TimeoutsConfig
  readonly maxConnections: number
  readonly hashKey: ((source: KeySource) => string | undefined) | undefined
  readonly sticky: StickyBinding | undefined
  /** Late binding on the admission queue, when configured. Kept across reloads with the group. */
  readonly admission: GroupAdmission | undefined
  readonly tenantKey: ((source: KeySource) => string | undefined) | undefined
}

export interface RouteRuntime {
  readonly route: CompiledRoute
  readonly config: RouteConfig
  /** Chooses the upstream group for a request: fixed, or a weighted split. */
  readonly chooseUpstream: (() => string) | undefined
}

/** One config snapshot, compiled. Swapped whole on reload; groups carry over by name. */
export interface ProxyRuntime {
  readonly config: Config
  readonly routes: RouteTable
  readonly routeRuntimes: readonly RouteRuntime[]
  readonly upstreams: ReadonlyMap<string, UpstreamRuntime>
  readonly models: ModelRegistry
}

export interface ProxyRuntimeDeps {
  readonly clock: Clock
  readonly random: Random
  readonly state: StateStore
  /** Used when an upstream's sticky cookie has no configured secret; one per Aya instance. */
  readonly stickySecret: string
  /** A sticky binding the shared state failed to read or write; the request went on unbound. */
  readonly onStateError?: ((error: unknown) => void) | undefined
  readonly llmSignals?: LlmSignals | undefined
  /** Where the groups' policies count and log their decisions (this Aya instance's metrics). */
  readonly decisions?: DecisionSink | undefined
  /**
   * The scraped engine metrics of a group. Asked once, when the group is made, and kept for as
   * long as the group lives, so the source must follow reloads (scraping switched on or off).
   */
  readonly engineMetricsFor?: ((upstream: string) => EngineMetricsSource | undefined) | undefined
  /** The group's link to the other Aya replicas' prefix indexes, when state is shared. */
  readonly prefixPeersFor?: ((upstream: string) => PrefixPeers) | undefined
  /** The group's link to the other Aya replicas' in-flight work, when state is shared. */
  readonly loadPeersFor?: ((upstream: string) => LoadPeers) | undefined
}

export function createProxyRuntime(
  config: Config,
  deps: ProxyRuntimeDeps,
  previous?: ProxyRuntime | undefined,
): ProxyRuntime {
  const upstreams = new Map<string, UpstreamRuntime>()
  for (const [name, upstreamConfig] of Object.entries(config.upstreams)) {
    const before = previous?.upstreams.get(name)
    const existing = before?.group
    // The queue is kept only while its settings are: with new ones, new requests wait in a new
    // queue, which passes freed capacity on to the old one until its waiters are gone.
    const keptAdmission =
      before?.admission !== undefined &&
      isDeepStrictEqual(existing?.config.admission, upstreamConfig.admission)
        ? before.admission
        : undefined
    const group =
      existing ??
      createUpstreamGroup(name, upstreamConfig, {
        ...deps,
        engineMetrics: deps.engineMetricsFor?.(name),
        prefixPeers: deps.prefixPeersFor?.(name),
        loadPeers: deps.loadPeersFor?.(name),
      })
    if (existing) existing.update(upstreamConfig)
    const admission = upstreamConfig.admission
      ? (keptAdmission ??
        createGroupAdmission(group, upstreamConfig.admission, deps, before?.admission))
      : undefined
    // A queue the upstream no longer has lets its waiters go, as its new requests now go.
    if (admission === undefined) before?.admission?.release()
    upstreams.set(name, buildUpstreamRuntime(name, group, upstreamConfig, deps, admission))
  }
  for (const [name, before] of previous?.upstreams ?? []) {
    if (upstreams.has(name)) continue
    before.admission?.release()
    before.group.retire()
  }
  const routes = createRouteTable(config.routes)
  const routeRuntimes = routes.routes.map((route) => ({
    route,
    config: route.config,
    chooseUpstream: route.config.split
      ? createSplitChooser(route.config.split, deps.random)
      : undefined,
  }))
  return { config, routes, routeRuntimes, upstreams, models: createModelRegistry(config.models) }
}

function buildUpstreamRuntime(
  name: string,
  group: UpstreamGroup,
  config: UpstreamConfig,
  deps: ProxyRuntimeDeps,
  admission: GroupAdmission | undefined,
): UpstreamRuntime {
  let sticky: StickyBinding | undefined
  if (config.sticky && 'cookie' in config.sticky) {
    const cookie = config.sticky.cookie
    const secret =
      cookie.secret !== undefined && cookie.secret !== '' ? cookie.secret : deps.stickySecret
    const codec = createStickyCookie(
      {
        name: cookie.name ?? defaultStickyCookieName(name),
        ttlMs: cookie.ttlMs,
        secret,
        secure: cookie.secure,
      },
      { clock: deps.clock },
    )
    const readCookie = createKeyExtractor({ cookie: codec.name })
    // The binding each request's cookie carried, as `lookup` verified it, for `bind` to read its
    // age without a second HMAC.
    const expiries = new WeakMap<KeySource, number>()
    sticky = {
      async lookup(source) {
        const value = readCookie(source)
        const binding = value === undefined ? undefined : codec.decodeBinding(value)
        if (binding !== undefined) expiries.set(source, binding.expiresAtMs)
        return binding?.endpointId
      },
      async bind(source, endpointId, current) {
        if (current !== endpointId) return codec.setCookieHeader(endpointId)
        // Past half its life the binding is issued again: a client in use stays bound for ttlMs
        // past its last request, as the header binding does, at one Set-Cookie per half TTL.
        const expiresAtMs = expiries.get(source)
        const isAgeing =
          expiresAtMs !== undefined && expiresAtMs - deps.clock.wallNow() < cookie.ttlMs / 2
        return isAgeing ? codec.setCookieHeader(endpointId) : undefined
      },
    }
  } else if (config.sticky && 'header' in config.sticky) {
    sticky = createStickyHeader(
      { upstream: name, header: config.sticky.header, ttlMs: config.sticky.ttlMs },
      { state: deps.state, onError: deps.onStateError },
    )
  }
  return {
    name,
    group,
    timeouts: config.timeouts,
    maxConnections: config.maxConnectionsPerEndpoint,
    hashKey: config.hashKey ? createKeyExtractor(config.hashKey) : undefined,
    sticky,
    admission,
    tenantKey: config.admission ? createKeyExtractor(config.admission.tenantKey) : undefined,
  }
}
