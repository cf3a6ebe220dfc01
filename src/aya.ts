import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import { createAdminHandler, type ReadinessPhase } from './admin/admin-server.ts'
import type { DecisionSink } from './balancer/pickers/aya-decision.ts'
import type { Config, SimUpstreamConfig, StateConfig } from './config/schema.ts'
import { createLlmSignals, type LlmSignals } from './llm/llm-signals.ts'
import { createPrefixPeers } from './llm/prefix-peers.ts'
import { createAccessLog } from './observability/access-log.ts'
import { configReloadedChannel, requestDoneChannel } from './observability/channels.ts'
import { createLogger, type Logger, logDestination } from './observability/logger.ts'
import { createMetrics } from './observability/metrics.ts'
import { createScrapeFailureLog } from './observability/scrape-failure-log.ts'
import { createThrottledWarn } from './observability/throttled-warn.ts'
import { createEngineMetricsScrapers } from './proxy/engine-metrics-scrapers.ts'
import { createHttpProxy } from './proxy/http-proxy.ts'
import { createProxyRuntime, type ProxyRuntime } from './proxy/proxy-runtime.ts'
import type { RequestContext, RequestRecord } from './proxy/request-context.ts'
import { countedInFlight, createRequestsInFlight } from './proxy/requests-in-flight.ts'
import { generateStickySecret } from './proxy/sticky-cookie.ts'
import { wantedPoolKeys } from './proxy/wanted-pool-keys.ts'
import { defaultPriority } from './resilience/priority-classes.ts'
import { createSimFleet, type SimFleet } from './sim/fleet.ts'
import { createMemoryState } from './state/memory-state.ts'
import { createRedisState } from './state/redis-state.ts'
import type { StateStore } from './state/state-store.ts'
import { createLoadPeers } from './upstream/load-peers.ts'
import { createPoolRegistry } from './upstream/pool-registry.ts'
import { type Clock, createSystemClock } from './util/clock.ts'
import { TrackedServer } from './util/http-server.ts'
import { createSystemRandom, type Random } from './util/random.ts'

export interface AyaDeps {
  readonly clock?: Clock
  readonly random?: Random
  readonly logger?: Logger
  readonly state?: StateStore
  /** Shared by every worker of one instance; generated when absent. */
  readonly stickySecret?: string
  /**
   * What the instance learns from the LLM traffic it carries (prompt-token calibration, output
   * lengths, endpoint capacity); created when absent. A caller that passes its own can read it.
   */
  readonly llmSignals?: LlmSignals
}

export interface AyaAddresses {
  readonly listeners: ReadonlyArray<{
    readonly name: string
    readonly address: string
    readonly port: number
  }>
  readonly admin: { readonly address: string; readonly port: number }
}

export interface Aya {
  /**
   * Starts the sim fleets, then binds the admin and the listeners. Rejects with StartInterrupted
   * when close() comes first: the start stops at its next step and close() releases what it
   * opened.
   */
  start(): Promise<AyaAddresses>
  /**
   * Swaps in a new config; pools and in-flight requests survive. Listeners are not re-bound. A
   * sim upstream it adds or changes gets its fleet in the background, as at start.
   */
  reload(config: Config): void
  /**
   * Stops accepting, finishes in-flight requests up to `deadlineMs` (by default the running
   * config's `shutdown.drainTimeoutMs`), then releases everything. During a start, it first
   * stops the start, then releases what the start opened.
   */
  close(deadlineMs?: number): Promise<void>
  readonly config: Config
  readonly ready: boolean
}

/** Wires one Aya instance: listeners, admin, upstream groups, pools, metrics and logs. */
export function createAya(initial: Config, deps: AyaDeps = {}): Aya {
  const clock = deps.clock ?? createSystemClock()
  const random = deps.random ?? createSystemRandom()
  const logger = deps.logger ?? createLogger({ level: initial.log.level })
  const state = deps.state ?? createConfiguredState(initial.state, clock, logger)
  const ownsState = deps.state === undefined
  const stickySecret = deps.stickySecret ?? generateStickySecret()
  const pools = createPoolRegistry()
  const llmSignals = deps.llmSignals ?? createLlmSignals({ clock })
  /** Each simulated upstream's running fleet, with the `sim` block it was started from. */
  const fleets = new Map<string, RunningFleet>()
  /** Fleets a reload removed or replaced, until they close. */
  const retiringFleets = new Set<SimFleet>()
  const scrapeFailureLog = createScrapeFailureLog({ intervalMs: 60_000 }, { logger, clock })
  const scrapers = createEngineMetricsScrapers({
    clock,
    // Called only once scrapes run, after `metrics` exists.
    onScrapeFailed: (upstream, endpointId, reason) => {
      metrics.observeScrapeFailure(upstream, endpointId)
      scrapeFailureLog.failed(upstream, endpointId, reason)
    },
    onReading: scrapeFailureLog.read,
    // Called only once scrapes run, after `runtime` exists.
    onRestart: (upstream, endpointId) => {
      logger.info(
        { upstream, endpoint: endpointId },
        'engine restarted (its counters went down): forgetting what its prefix cache held',
      )
      runtime.upstreams.get(upstream)?.group.forgetCache(endpointId)
    },
  })
  const metrics = createMetrics({
    capacity: llmSignals.capacity,
    readingAgeMs: scrapers.readingAgeMs,
    scrapedEndpoints: scrapers.scrapedEndpoints,
    state,
  })
  // Scheduler decisions, this instance's only: a counter per branch, and the candidates'
  // predictions at debug level. The full decision costs the scheduler an array per request, so it
  // is asked for only while the log would write it.
  let isLoggingDecisions = false
  const logDecisionsAtDebug = () => {
    isLoggingDecisions = logger.isLevelEnabled('debug')
  }
  const decisions: DecisionSink = {
    branch: ({ policy, branch }) => metrics.observeDecision(policy, branch),
    get wantsDecisions() {
      return isLoggingDecisions
    },
    decision: (decision) => logger.debug({ decision }, 'scheduler decision'),
  }
  const prefixSharingError = createThrottledWarn(
    { message: 'prefix sharing error', intervalMs: 10_000 },
    { logger, clock },
  )
  const loadSharingError = createThrottledWarn(
    { message: 'load sharing error', intervalMs: 10_000 },
    { logger, clock },
  )
  const stateError = createThrottledWarn(
    { message: 'shared state unavailable: sticky binding skipped', intervalMs: 10_000 },
    { logger, clock },
  )
  // Only a store other processes see connects router replicas; in memory nobody else listens.
  const acrossReplicas = <T>(link: (upstream: string) => T) =>
    state.kind === 'memory' ? undefined : link
  const runtimeDeps = {
    clock,
    random,
    state,
    stickySecret,
    llmSignals,
    decisions,
    engineMetricsFor: scrapers.sourceFor,
    onStateError: stateError,
    prefixPeersFor: acrossReplicas((upstream) =>
      createPrefixPeers(
        { channel: `prefix:${upstream}` },
        { state, onError: (err) => prefixSharingError(err, { upstream }) },
      ),
    ),
    loadPeersFor: acrossReplicas((upstream) =>
      createLoadPeers(
        { channel: `load:${upstream}` },
        { state, clock, onError: (err) => loadSharingError(err, { upstream }) },
      ),
    ),
  }
  let desired: Config = initial
  /** The start in progress or done, settled either way. */
  let starting: Promise<unknown> = Promise.resolve()
  let released: Promise<void> | undefined
  const build = (config: Config, previous?: ProxyRuntime) => {
    const next = createProxyRuntime(withSimEndpoints(config, fleets), runtimeDeps, previous)
    // Only once it is built: a config that failed to build must not be applied by the next
    // fleet reconciliation, which rebuilds from `desired`.
    desired = config
    scrapers.sync(next.upstreams)
    scrapeFailureLog.retainOnly(scrapers.scrapedEndpoints())
    // A tokenizer's vocabulary loads on first use (about 200 ms for o200k): at start and reload,
    // not inside the first request for the model.
    for (const name of next.models.names()) {
      llmSignals.tokens.warmUp(next.models.resolve(name)!.servedModel)
    }
    return next
  }
  let runtime: ProxyRuntime = build(initial)
  // Settles once every pool let go of so far has closed, its in-flight requests done.
  let poolsReleased: Promise<void> = Promise.resolve()
  let pendingReleases = 0
  const inFlight = createRequestsInFlight()
  const releaseUnwantedPools = () => {
    const released = pools.retain(wantedPoolKeys(runtime)).catch(() => {})
    poolsReleased = Promise.all([poolsReleased, released]).then(() => {})
    // The request series of what the config no longer has go once its requests are done: the
    // requests begun before the reload too, since a removed route's upstream keeps its pools.
    pendingReleases++
    metrics.setRequestScope(undefined)
    void Promise.all([released, inFlight.drained()]).then(() => {
      if (--pendingReleases > 0) return
      metrics.setRequestScope({
        routes: new Set(runtime.routes.routes.map((route) => route.name)),
        models: new Set(Object.keys(runtime.config.models)),
      })
    })
  }
  const retireFleet = (name: string, fleet: SimFleet) => {
    retiringFleets.add(fleet)
    // Its requests in flight finish first, as a removed endpoint's do.
    void poolsReleased.then(async () => {
      if (!retiringFleets.delete(fleet)) return // close() got there first
      await fleet.close()
      logger.info({ upstream: name, urls: fleet.urls }, 'simulated fleet stopped')
    })
  }
  /** Settles when a shutdown begins: a fleet still loading is not waited for then. */
  let stopWaiting = () => {}
  const closing = new Promise<void>((resolve) => {
    stopWaiting = resolve
  })
  /**
   * Has each running fleet serve the LoRA adapters the desired models name on its upstream: they
   * come and go without a restart, as vLLM loads and unloads adapters at runtime.
   */
  const serveLoras = () => {
    for (const [name, running] of fleets) {
      running.fleet.setLoras(runtime.models.loraAdapters(name))
    }
  }
  /**
   * Brings the simulated fleets in line with the desired config, at start and at each reload
   * alike: starts the fleet of each sim upstream that has none or whose `sim` block changed and
   * swaps the runtime onto its endpoints, and retires each fleet no longer wanted.
   */
  const reconcileFleets = async () => {
    let isChanged = false
    const retired: Array<[string, SimFleet]> = []
    try {
      for (const [name, upstream] of Object.entries(desired.upstreams)) {
        // Closing: no fleet is wanted any more.
        if (isClosing()) break
        const running = fleets.get(name)
        if (!upstream.sim || (running && isDeepStrictEqual(running.sim, upstream.sim))) continue
        const fleet = await createSimFleet({
          ...upstream.sim,
          loras: runtime.models.loraAdapters(name),
        })
        logger.info({ upstream: name, urls: fleet.urls }, 'simulated fleet started')
        if (running) {
          // The old fleet serves until the new one's engines have loaded (`startupMs`): swapped
          // in at once, every request would get their 503 for the whole window.
          await Promise.race([fleet.ready, closing])
          if (isClosing()) {
            retired.push([name, fleet])
            break
          }
          retired.push([name, running.fleet])
        }
        fleets.set(name, { sim: upstream.sim, fleet })
        isChanged = true
      }
    } finally {
      // A reload may have come while a fleet started: `desired` is the latest config.
      serveLoras()
      for (const [name, running] of fleets) {
        if (desired.upstreams[name]?.sim) continue
        fleets.delete(name)
        retired.push([name, running.fleet])
        isChanged = true
      }
      if (isChanged) runtime = build(desired, runtime)
      if (retired.length > 0) releaseUnwantedPools()
      for (const [name, fleet] of retired) retireFleet(name, fleet)
    }
  }
  // One reconciliation at a time; a failed one does not hold up the next.
  let fleetsSettled: Promise<void> = Promise.resolve()
  const syncFleets = (): Promise<void> => {
    const next = fleetsSettled.then(reconcileFleets)
    fleetsSettled = next.catch(() => {})
    return next
  }
  metrics.setGroups(
    () => runtime.upstreams.values(),
    () => defaultPriority(runtime.config.priorities),
    () => Object.values(runtime.config.priorities.classes),
  )
  logDecisionsAtDebug()
  let phase: ReadinessPhase = 'starting'
  /** Draining, once close() or a failed start set it: a start in progress opens nothing more. */
  const isClosing = () => phase === 'draining'
  let accessLog = initial.log.access

  const writeAccessLine = createAccessLog(logDestination(logger), () => clock.wallNow())
  /** Counts and logs a finished request, the HTTP server's own refusals (no context) included. */
  const recordRequest = (record: RequestRecord) => {
    metrics.observeRequest(record)
    if (accessLog) writeAccessLine(record)
  }
  const onRequestDone = (ctx: RequestContext) => {
    recordRequest(ctx)
    inFlight.end(ctx.req)
    if (requestDoneChannel.hasSubscribers) requestDoneChannel.publish(ctx)
  }

  const listeners = initial.listeners.map((listener) => ({
    config: listener,
    server: new TrackedServer(
      countedInFlight(
        inFlight,
        createHttpProxy(listener, {
          clock,
          random,
          pools,
          generateId: randomUUID,
          onRequestDone,
          onRequestRefused: recordRequest,
          llmSignals,
          runtime: () => runtime,
        }),
      ),
      { host: listener.address, port: listener.port },
    ),
  }))
  const admin = new TrackedServer(
    createAdminHandler({ registry: metrics.registry, phase: () => phase }),
    {
      host: initial.admin.address,
      port: initial.admin.port,
    },
  )

  const instance: Aya = {
    get config() {
      return runtime.config
    },
    get ready() {
      return phase === 'ready'
    },
    start() {
      const started = startUp()
      // close() waits for a start in progress to stop before it releases what was opened.
      starting = started.catch(() => {})
      return started
    },
    reload(config) {
      if (!isDeepStrictEqual(config.state, initial.state)) {
        logger.warn('the state block changed: it takes effect at the next start')
      }
      const bindings = (c: Config) => c.listeners.map((l) => [l.name, l.address, l.port])
      if (!isDeepStrictEqual(bindings(config), bindings(initial))) {
        logger.warn(
          'listener names, addresses or ports changed: they take effect at the next start',
        )
      }
      if (!isDeepStrictEqual(config.admin, initial.admin)) {
        logger.warn('the admin address or port changed: it takes effect at the next start')
      }
      runtime = build(config, runtime)
      accessLog = config.log.access
      logger.level = config.log.level
      logDecisionsAtDebug()
      // Pools of removed endpoints, or of changed pool settings, close after their in-flight
      // requests finish.
      releaseUnwantedPools()
      serveLoras()
      // A sim upstream the reload added or changed gets its fleet as at start, in the
      // background: its group has the endpoints once the fleet is up.
      syncFleets().catch((err: Error) => logger.error({ err }, 'simulated fleet failed to start'))
      if (configReloadedChannel.hasSubscribers) configReloadedChannel.publish({ config })
      logger.info('config reloaded')
    },
    async close(deadlineMs = runtime.config.shutdown.drainTimeoutMs) {
      phase = 'draining'
      stopWaiting()
      // A start in progress stops at its next step; what it opened is released below.
      await starting
      await releaseOnce(deadlineMs)
    },
  }
  const releaseOnce = (deadlineMs: number): Promise<void> => {
    phase = 'draining'
    stopWaiting()
    released ??= release(deadlineMs)
    return released
  }
  const stopIfClosing = () => {
    if (isClosing()) throw new StartInterrupted()
  }
  const startUp = async (): Promise<AyaAddresses> => {
    const bound: AddressInfo[] = []
    let adminAddress: AddressInfo
    try {
      stopIfClosing()
      // Simulated fleets start first, so the groups have endpoints to use.
      await syncFleets()
      stopIfClosing()
      adminAddress = await admin.listen()
      for (const listener of listeners) {
        stopIfClosing()
        bound.push(await listener.server.listen())
      }
      stopIfClosing()
    } catch (error) {
      // close() came during the start: it releases what did start once this returns.
      if (isClosing()) throw error instanceof StartInterrupted ? error : new StartInterrupted()
      // A port in use: close what did start (the admin would answer /healthz for an instance
      // that serves nothing, a fleet would serve no one) and fail, so the process exits
      // non-zero.
      await releaseOnce(0)
      throw error
    }
    phase = 'ready'
    const addresses: AyaAddresses = {
      listeners: listeners.map((listener, i) => ({
        name: listener.config.name,
        address: bound[i]!.address,
        port: bound[i]!.port,
      })),
      admin: { address: adminAddress.address, port: adminAddress.port },
    }
    logger.info({ listeners: addresses.listeners, admin: addresses.admin }, 'aya started')
    return addresses
  }
  /** Stops accepting, drains up to `deadlineMs`, and releases everything; once. */
  const release = async (deadlineMs: number) => {
    // Requests still waiting for capacity at the deadline never went upstream: they are told so
    // (503 LB_ERR_SHED with Retry-After, which a client may retry elsewhere) rather than cut.
    const closeQueues = () => {
      for (const upstream of runtime.upstreams.values()) {
        upstream.admission?.close()
        // The prefill pacer's held prompts never went upstream either.
        upstream.group.pacer()?.shed()
      }
    }
    await Promise.all(listeners.map((listener) => listener.server.close(deadlineMs, closeQueues)))
    await admin.close(1000)
    // A fleet starting now joins the runtime before its groups retire.
    await fleetsSettled
    for (const upstream of runtime.upstreams.values()) {
      upstream.admission?.close()
      upstream.group.retire()
    }
    await pools.close()
    scrapers.close()
    const fleetsLeft = [...[...fleets.values()].map((running) => running.fleet), ...retiringFleets]
    fleets.clear()
    retiringFleets.clear()
    await Promise.all(fleetsLeft.map((fleet) => fleet.close()))
    if (ownsState) await state.close()
    writeAccessLine.flush()
    logger.info('aya stopped')
    logger.flush()
  }
  return instance
}

/** What `start()` rejects with when `close()` came before the start completed. */
export class StartInterrupted extends Error {
  constructor() {
    super('aya was closed while starting')
    this.name = 'StartInterrupted'
  }
}

interface RunningFleet {
  readonly sim: SimUpstreamConfig
  readonly fleet: SimFleet
}

/** The config with each simulated upstream's endpoints filled in from its running fleet. */
function withSimEndpoints(config: Config, fleets: ReadonlyMap<string, RunningFleet>): Config {
  if (fleets.size === 0) return config
  const upstreams: Config['upstreams'] = { ...config.upstreams }
  for (const [name, { fleet }] of fleets) {
    const upstream = upstreams[name]
    if (!upstream?.sim) continue
    upstreams[name] = { ...upstream, endpoints: fleet.urls.map((url) => ({ url, weight: 1 })) }
  }
  return { ...config, upstreams }
}

/** The shared-state store the config names: in process, or on Redis. */
function createConfiguredState(config: StateConfig, clock: Clock, logger: Logger): StateStore {
  if (config.store === 'memory') {
    // Likely a store meant to be switched on (`store: ${STORE:-memory}` left unset): said once,
    // since replicas that believe they share sticky bindings and prefixes then share nothing.
    if (config.url !== undefined) {
      logger.warn(
        'state.url is set but state.store is memory: the url is not used, and nothing is shared with other replicas',
      )
    }
    return createMemoryState({ clock })
  }
  return createRedisState(
    { url: config.url!, keyPrefix: config.keyPrefix, commandTimeoutMs: config.commandTimeoutMs },
    {
      clock,
      onError: createThrottledWarn(
        { message: 'shared state store error', intervalMs: 10_000 },
        { logger, clock },
      ),
      onHandlerError: (err, channel) => logger.error({ err, channel }, 'state subscriber failed'),
      onReconnect: () => logger.info('shared state store connected again'),
    },
  )
}
