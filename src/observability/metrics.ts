import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { UpstreamGroup } from '../balancer/upstream-group.ts'
import { UNMATCHED_LABEL } from '../config/unmatched-label.ts'
import type { GroupAdmission } from '../proxy/group-admission.ts'
import {
  type CounterCell,
  createCellCounter,
  createCellHistogram,
  type HistogramCell,
} from './cell-metrics.ts'

export interface MeteredUpstream {
  readonly name: string
  readonly group: UpstreamGroup
  readonly admission?: GroupAdmission | undefined
}

import type { EndpointCapacity } from '../llm/endpoint-capacity.ts'
import type { RequestRecord } from '../proxy/request-context.ts'
import type { StateStore } from '../state/state-store.ts'
import type { Endpoint } from '../upstream/endpoint.ts'

export interface AyaMetrics {
  readonly registry: Registry
  /**
   * Groups (and their admission queues) to read gauges from at scrape time, and the priority of
   * the default class (`defaultPriority`), where the predicted-wait gauge reads; default 0.
   * `classPriorities` are the configured classes' priorities: the queue-depth gauge reads 0 for
   * each of them while its band is empty, so an autoscaler sees an empty queue, not no data.
   */
  setGroups(
    groups: () => Iterable<MeteredUpstream>,
    defaultPriority?: () => number,
    classPriorities?: () => readonly number[],
  ): void
  /** Counts one scheduler decision by its branch. */
  observeDecision(policy: string, branch: string): void
  /** Counts a scrape of an endpoint's /metrics that gave no reading. */
  observeScrapeFailure(upstream: string, endpointId: string): void
  observeRequest(ctx: RequestRecord): void
  /**
   * Where request series (counts, durations, bytes, errors, LLM time to first token and tokens)
   * are kept: the running config's route names and model registry entries, with the upstreams and
   * endpoints of the groups (`setGroups`). Those of anything else go now, and a request that
   * finishes on one later is not counted. Undefined while requests to what a reload removed may
   * still be in flight: every series is kept.
   */
  setRequestScope(scope: RequestScope | undefined): void
}

export interface RequestScope {
  readonly routes: ReadonlySet<string>
  /** The model registry's entries (`models.<name>`), the `model` label's values. */
  readonly models: ReadonlySet<string>
}

/**
 * Every Aya metric is defined here; the core never imports prom-client. Each Aya instance has its
 * own registry, so two instances in one process (tests, the benchmark) never mix their counts.
 */
export function createMetrics(
  deps: {
    /** What the router has learned of each endpoint's speed, exported once it rests on samples. */
    readonly capacity?: EndpointCapacity
    /** Since each scraped endpoint's last good /metrics reading. */
    readonly readingAgeMs?: (upstream: string, endpointId: string) => number | undefined
    /**
     * The endpoints whose /metrics are scraped now: each has its scrape-failure series from the
     * start, at 0, and loses it once no longer scraped.
     */
    readonly scrapedEndpoints?: () => Iterable<{
      readonly upstream: string
      readonly endpointId: string
    }>
    /** The shared-state store, read at scrape time for `aya_state_store_up`. */
    readonly state?: Pick<StateStore, 'kind' | 'connected'>
  } = {},
): AyaMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'aya_process_' })
  let upstreams: () => Iterable<MeteredUpstream> = () => []
  let waitPriority: () => number = () => 0
  let knownPriorities: () => readonly number[] = () => []
  const groups = function* () {
    for (const upstream of upstreams()) yield upstream.group
  }
  const pacerOf = (upstream: string) => {
    for (const metered of upstreams()) if (metered.name === upstream) return metered.group.pacer()
    return undefined
  }
  /** The upstreams with an admission queue, by name. */
  const admissions = function* () {
    for (const { name, admission } of upstreams()) {
      if (admission) yield { upstream: name, admission }
    }
  }

  const requests = createCellCounter(registry, {
    name: 'aya_requests_total',
    help: 'Requests handled, by route, upstream group, endpoint and response status.',
    labelNames: ['route', 'upstream', 'endpoint', 'status'],
  })
  const duration = createCellHistogram(registry, {
    name: 'aya_request_duration_seconds',
    help: 'Time from request arrival to the end of the response.',
    labelNames: ['route', 'upstream'],
    buckets: [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
    ],
  })
  const upstreamLatency = createCellHistogram(registry, {
    name: 'aya_upstream_response_seconds',
    help: 'Time from dispatch to the upstream response headers.',
    labelNames: ['upstream'],
    buckets: [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ],
  })
  // LLM requests, by route and the model registry entry the request resolved to: never the name
  // the client sent, which a wildcard entry would let mint a series per request.
  const ttft = createCellHistogram(registry, {
    name: 'aya_llm_ttft_seconds',
    help: 'Time from an LLM request arrival to the first generated token passed to the client (streamed responses).',
    labelNames: ['route', 'model'],
    buckets: [
      0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20,
      30, 60,
    ],
  })
  const timePerOutputToken = createCellHistogram(registry, {
    name: 'aya_llm_time_per_output_token_seconds',
    help: 'Mean time between the output tokens of an LLM stream after its first, for streams of at least 2 tokens.',
    labelNames: ['route', 'model'],
    buckets: [
      0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
      0.5, 1, 2.5,
    ],
  })
  const llmTokens = createCellCounter(registry, {
    name: 'aya_llm_tokens_total',
    help: 'Tokens of LLM requests as their upstreams reported them, by kind (prompt, completion).',
    labelNames: ['route', 'model', 'kind'],
  })
  const errors = createCellCounter(registry, {
    name: 'aya_errors_total',
    help: 'Local replies, cut responses and error events inside relayed streams, by error code.',
    labelNames: ['code', 'route'],
  })
  // A retry succeeds unseen in every other series: only this shows an endpoint that refuses
  // connections, or a keep-alive race, being retried past.
  const retries = createCellCounter(registry, {
    name: 'aya_upstream_retries_total',
    help: 'Attempts after the first: a connect failure tried on another endpoint, an idempotent request sent again after its connection closed unanswered, or an LLM request placed again after its endpoint left while its prompt was held.',
    labelNames: ['route', 'upstream'],
  })
  const bytesIn = createCellCounter(registry, {
    name: 'aya_request_bytes_total',
    help: 'Request body bytes received from clients.',
    labelNames: ['route'],
  })
  const bytesOut = createCellCounter(registry, {
    name: 'aya_response_bytes_total',
    help: 'Response body bytes sent to clients.',
    labelNames: ['route'],
  })
  /**
   * A gauge per endpoint, read at scrape time; an endpoint whose value is undefined is left out.
   * `read` can also ask for the group's eligible endpoints, built once per group and scrape and
   * only when asked: one gauge needs them.
   */
  const endpointGauge = (
    name: string,
    help: string,
    read: (
      endpoint: Endpoint,
      eligible: () => ReadonlySet<Endpoint>,
      upstream: string,
    ) => number | undefined,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: ['upstream', 'endpoint'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const group of groups()) {
          let eligibleSet: ReadonlySet<Endpoint> | undefined
          const eligible = () => {
            eligibleSet ??= new Set(group.eligible())
            return eligibleSet
          }
          for (const endpoint of group.endpoints()) {
            const value = read(endpoint, eligible, group.name)
            if (value !== undefined)
              this.set({ upstream: group.name, endpoint: endpoint.id }, value)
          }
        }
      },
    })
  }
  endpointGauge(
    'aya_endpoint_inflight_requests',
    'Requests this router dispatched to an endpoint and not finished.',
    (endpoint) => endpoint.own.inflight,
  )
  // Router-side accounting of LLM work, the primary load signal (docs/llm-routing.md). Each
  // replica reports its own part, so a sum across replicas is the fleet's.
  endpointGauge(
    'aya_endpoint_pending_prefill_tokens',
    'Uncached prompt tokens this router dispatched to an endpoint whose first token has not come back.',
    (endpoint) => endpoint.own.prefillTokens,
  )
  endpointGauge(
    'aya_endpoint_peer_inflight_requests',
    'Requests the other Aya replicas sharing state have in flight on an endpoint, as they announced.',
    (endpoint) => endpoint.peers.inflight,
  )
  endpointGauge(
    'aya_endpoint_peer_pending_prefill_tokens',
    'Uncached prompt tokens the other Aya replicas sharing state placed on an endpoint, awaiting their first token.',
    (endpoint) => endpoint.peers.prefillTokens,
  )
  endpointGauge(
    'aya_endpoint_kv_tokens',
    'KV tokens the router estimates its requests in flight hold: prompt, generated, still expected.',
    (endpoint) => endpoint.own.kvTokens,
  )
  // The prefill pacer's lanes (docs/llm-routing.md, "Prefill pacing"): prompts placed on an
  // endpoint but held at the router, and those sent still awaiting their first token, which hold
  // the lane's next prompt back. Absent for a group that does not pace.
  endpointGauge(
    'aya_endpoint_pacer_held_prompts',
    'Prompts placed on an endpoint that the prefill pacer holds at the router, not yet sent.',
    (endpoint, _eligible, upstream) => pacerOf(upstream)?.heldFor(endpoint.id),
  )
  endpointGauge(
    'aya_endpoint_pacer_sent_prefill_tokens',
    'Prefill tokens the prefill pacer sent to an endpoint whose first token has not come back.',
    (endpoint, _eligible, upstream) => pacerOf(upstream)?.sentPrefillTokens(endpoint.id),
  )
  endpointGauge(
    'aya_endpoint_decode_itl_seconds',
    "Seconds per token an endpoint's streams are getting now (recent seconds, prefill stalls included).",
    (endpoint) => {
      const itlMs = endpoint.decodeItlMs
      return itlMs === undefined ? undefined : itlMs / 1000
    },
  )
  // Learned from the endpoint's own responses (docs/llm-routing.md, Knowing the fleet); absent
  // until it has answered an LLM request, so the priors are never mistaken for a measurement.
  const learned = (endpoint: Endpoint) => deps.capacity?.learned(endpoint.id)
  endpointGauge(
    'aya_endpoint_prefill_tokens_per_second',
    "Prefill throughput the router has learned for an endpoint from its responses' time to first token.",
    (endpoint) => learned(endpoint)?.prefillTokensPerSec,
  )
  endpointGauge(
    'aya_endpoint_decode_step_seconds',
    'Decode step time the router has learned for an endpoint from its streamed token gaps.',
    (endpoint) => {
      const stepMs = learned(endpoint)?.decodeStepMs
      return stepMs === undefined ? undefined : stepMs / 1000
    },
  )
  endpointGauge(
    'aya_endpoint_eligible',
    '1 when the endpoint is enabled and not unhealthy.',
    (endpoint, eligible) => (eligible().has(endpoint) ? 1 : 0),
  )
  // Scraped engine metrics go stale silently for the policies (stale is unknown, not idle): these
  // tell the operator why an engine's readings stopped counting.
  endpointGauge(
    'aya_endpoint_engine_metrics_age_seconds',
    "Seconds since the endpoint's last good /metrics reading (readings older than staleAfterMs count as unknown).",
    (endpoint, _eligible, upstream) => {
      const ageMs = deps.readingAgeMs?.(upstream, endpoint.id)
      return ageMs === undefined ? undefined : ageMs / 1000
    },
  )
  /** The scrape-failure series there are, by upstream and endpoint. */
  const failureSeries = new Map<string, { upstream: string; endpoint: string }>()
  const scrapeFailures = new Counter({
    name: 'aya_endpoint_engine_metrics_failures_total',
    help: "Scrapes of an endpoint's /metrics that gave no reading: refused, timed out, not 200, too large or unparsable.",
    labelNames: ['upstream', 'endpoint'] as const,
    registers: [registry],
    // A series that first appears at 1 hides that failure from `increase()`: each scraped
    // endpoint's starts at 0. One no longer scraped (a reload removed it) goes.
    collect() {
      if (!deps.scrapedEndpoints) return
      const scraped = new Map<string, { upstream: string; endpoint: string }>()
      for (const { upstream, endpointId } of deps.scrapedEndpoints()) {
        scraped.set(seriesKey(upstream, endpointId), { upstream, endpoint: endpointId })
      }
      for (const [key, labels] of failureSeries) {
        if (scraped.has(key)) continue
        this.remove(labels)
        failureSeries.delete(key)
      }
      for (const [key, labels] of scraped) {
        if (failureSeries.has(key)) continue
        this.inc(labels, 0)
        failureSeries.set(key, labels)
      }
    },
  })

  // One record per label set, so a request costs one map lookup and a few additions.
  interface RequestCells {
    readonly labels: RequestLabels
    readonly requests: CounterCell
    readonly duration: HistogramCell
    readonly upstreamLatency: HistogramCell
    readonly bytesIn: CounterCell
    readonly bytesOut: CounterCell
    readonly retries: CounterCell
  }
  const records = new Map<string, RequestCells>()
  interface LlmCells {
    readonly labels: { readonly route: string; readonly model: string }
    readonly ttft: HistogramCell
    readonly timePerOutputToken: HistogramCell
    readonly promptTokens: CounterCell
    readonly completionTokens: CounterCell
  }
  const llmRecords = new Map<string, LlmCells>()
  const observeLlm = (ctx: RequestRecord, route: string, model: string) => {
    const key = `${route}\u0000${model}`
    let cells = llmRecords.get(key)
    if (cells === undefined) {
      const labels = { route, model }
      if (!isInScope(labels)) return
      cells = {
        labels,
        ttft: ttft.cell(route, model),
        timePerOutputToken: timePerOutputToken.cell(route, model),
        promptTokens: llmTokens.cell(route, model, 'prompt'),
        completionTokens: llmTokens.cell(route, model, 'completion'),
      }
      llmRecords.set(key, cells)
    }
    if (ctx.ttftMs !== undefined) cells.ttft.observe(ctx.ttftMs / 1000)
    if (ctx.timePerOutputTokenMs !== undefined)
      cells.timePerOutputToken.observe(ctx.timePerOutputTokenMs / 1000)
    if (ctx.promptTokens !== undefined) cells.promptTokens.inc(ctx.promptTokens)
    if (ctx.completionTokens !== undefined) cells.completionTokens.inc(ctx.completionTokens)
  }
  const observeRequest = (ctx: RequestRecord) => {
    const route = ctx.route?.name ?? UNMATCHED_LABEL
    const upstream = ctx.upstream ?? UNMATCHED_LABEL
    const endpoint = ctx.endpoint?.id ?? UNMATCHED_LABEL
    const key = `${route}\u0000${upstream}\u0000${endpoint}\u0000${ctx.status}`
    let cells = records.get(key)
    if (cells === undefined) {
      const labels = { route, upstream, endpoint }
      // Finished after its route, upstream or endpoint went, and after the series did.
      if (!isInScope(labels)) return
      cells = {
        labels,
        requests: requests.cell(route, upstream, endpoint, String(ctx.status)),
        duration: duration.cell(route, upstream),
        upstreamLatency: upstreamLatency.cell(upstream),
        bytesIn: bytesIn.cell(route),
        bytesOut: bytesOut.cell(route),
        retries: retries.cell(route, upstream),
      }
      records.set(key, cells)
    }
    cells.requests.inc()
    cells.duration.observe(ctx.durationMs / 1000)
    if (ctx.upstreamLatencyMs !== undefined)
      cells.upstreamLatency.observe(ctx.upstreamLatencyMs / 1000)
    if (ctx.errorCode !== undefined) errors.cell(ctx.errorCode, route).inc()
    if (ctx.bytesIn > 0) cells.bytesIn.inc(ctx.bytesIn)
    if (ctx.bytesOut > 0) cells.bytesOut.inc(ctx.bytesOut)
    if (ctx.attempts > 1) cells.retries.inc(ctx.attempts - 1)
    if (ctx.modelEntry !== undefined && ctx.route !== undefined) {
      if (
        ctx.ttftMs !== undefined ||
        ctx.promptTokens !== undefined ||
        ctx.completionTokens !== undefined
      )
        observeLlm(ctx, route, ctx.modelEntry)
    }
  }
  /** The running config's routes and models; undefined while every request series is kept. */
  let scope: RequestScope | undefined
  /**
   * Whether the running config has these labels' route, model, upstream and endpoint (`none`
   * aside).
   */
  const isInScope = (labels: Partial<RequestLabels> & { readonly model?: string }): boolean => {
    if (scope === undefined) return true
    const { route, upstream, endpoint, model } = labels
    if (route !== undefined && route !== UNMATCHED_LABEL && !scope.routes.has(route)) return false
    if (model !== undefined && !scope.models.has(model)) return false
    if (upstream === undefined || upstream === UNMATCHED_LABEL) return true
    for (const metered of upstreams()) {
      if (metered.name !== upstream) continue
      return (
        endpoint === undefined ||
        endpoint === UNMATCHED_LABEL ||
        metered.group.find(endpoint) !== undefined
      )
    }
    return false
  }
  const setRequestScope = (next: RequestScope | undefined) => {
    scope = next
    if (next === undefined) return
    for (const [key, cells] of records) if (!isInScope(cells.labels)) records.delete(key)
    for (const [key, cells] of llmRecords) if (!isInScope(cells.labels)) llmRecords.delete(key)
    for (const metric of [
      requests,
      duration,
      upstreamLatency,
      bytesIn,
      bytesOut,
      retries,
      ttft,
      timePerOutputToken,
      llmTokens,
      errors,
    ])
      metric.retain(isInScope)
  }
  const decisions = new Counter({
    name: 'aya_scheduler_decisions_total',
    help: 'LLM placement decisions by rule: warm hit, valve fired, cold placement, saturated, queued, bound by a sticky cookie.',
    labelNames: ['policy', 'branch'] as const,
    registers: [registry],
  })
  /**
   * A gauge per upstream and priority class, read from each admission queue at scrape time:
   * `read` yields [priority, value] pairs, given the configured classes (the default among them,
   * as config validation sees to it).
   */
  const classGauge = (
    name: string,
    help: string,
    read: (admission: GroupAdmission, priorities: readonly number[]) => Iterable<[number, number]>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['upstream', 'priority'] as const,
      registers: [registry],
      collect() {
        this.reset()
        const priorities = knownPriorities()
        for (const { upstream, admission } of admissions()) {
          for (const [priority, value] of read(admission, priorities)) {
            this.set({ upstream, priority }, value)
          }
        }
      },
    })
  classGauge(
    'aya_admission_queue_depth',
    'Requests waiting in an upstream group admission queue, by priority class: an autoscaling signal.',
    (admission, priorities) => byClass(admission, priorities, (band) => band.count),
  )
  // The bound `maxBytes` is on these: a queue full of long prompts fills by bytes long before
  // it does by count, and the depth alone would not show how near it is.
  classGauge(
    'aya_admission_queue_bytes',
    'Request body bytes waiting in an upstream group admission queue, by priority class.',
    (admission, priorities) => byClass(admission, priorities, (band) => band.bytes ?? 0),
  )
  new Gauge({
    name: 'aya_state_store_up',
    help: 'Whether the shared-state store answers now (1) or not (0): Aya goes on without it.',
    labelNames: ['store'] as const,
    registers: [registry],
    collect() {
      this.reset()
      if (deps.state) this.set({ store: deps.state.kind }, deps.state.connected ? 1 : 0)
    },
  })
  new Gauge({
    name: 'aya_admission_predicted_wait_seconds',
    help: 'Predicted queueing delay for a new request at the default priority.',
    labelNames: ['upstream'] as const,
    registers: [registry],
    collect() {
      this.reset()
      // Bands are strict: at priority 0 the wait leaves out every band below it, so with a
      // negative default class the gauge would read 0 while unlabelled traffic waits.
      const priority = waitPriority()
      for (const { upstream, admission } of admissions()) {
        this.set({ upstream }, admission.predictedWaitMs(priority) / 1000)
      }
    },
  })
  classGauge(
    'aya_admission_class_predicted_wait_seconds',
    'Predicted queueing delay for a new request, by priority class: strict bands wait for every band above them.',
    function* (admission, priorities) {
      for (const priority of priorities)
        yield [priority, admission.predictedWaitMs(priority) / 1000]
    },
  )
  new Counter({
    name: 'aya_admission_rejected_total',
    help: 'Requests the admission queue refused or timed out, by reason.',
    labelNames: ['upstream', 'reason'] as const,
    registers: [registry],
    // Read from the queue's own running totals, which carry over the queues a reload replaces.
    collect() {
      this.reset()
      for (const { upstream, admission } of admissions()) {
        for (const [reason, count] of Object.entries(admission.stats().rejectedTotal))
          this.inc({ upstream, reason }, Number(count))
      }
    },
  })

  return {
    registry,
    setGroups(next, defaultPriority, classPriorities) {
      upstreams = next
      waitPriority = defaultPriority ?? (() => 0)
      knownPriorities = classPriorities ?? (() => [])
    },
    observeScrapeFailure(upstream, endpointId) {
      const labels = { upstream, endpoint: endpointId }
      scrapeFailures.inc(labels)
      failureSeries.set(seriesKey(upstream, endpointId), labels)
    },
    observeDecision(policy, branch) {
      decisions.inc({ policy, branch })
    },
    observeRequest,
    setRequestScope,
  }
}

interface RequestLabels {
  readonly route: string
  readonly upstream: string
  readonly endpoint: string
}

function seriesKey(upstream: string, endpointId: string): string {
  return `${upstream}\u0000${endpointId}`
}

/**
 * Each configured class's total over the queue's bands: a band between classes (an integer
 * priority a client chose within the classes' range) counts under the class at or below it. A
 * label per band would let clients mint a series per integer in that range over time, each one a
 * new series for the operator's Prometheus to keep.
 */
function byClass(
  admission: GroupAdmission,
  priorities: readonly number[],
  measure: (band: { readonly count: number; readonly bytes?: number }) => number,
): Array<[number, number]> {
  const classes = [...new Set(priorities)].sort((a, b) => b - a)
  const totals = new Map<number, number>(classes.map((priority) => [priority, 0]))
  for (const band of admission.stats().bands) {
    // Clamping keeps a band within the classes' range; a route's own priority below the lowest
    // class counts under the lowest.
    const floor = classes.find((priority) => priority <= band.priority) ?? classes.at(-1)
    const key = floor ?? band.priority
    totals.set(key, (totals.get(key) ?? 0) + measure(band))
  }
  return [...totals]
}
