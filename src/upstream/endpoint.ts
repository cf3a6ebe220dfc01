import type { Clock } from '../util/clock.ts'

export interface EndpointSpec {
  /** Stable identity: "host:port" of the URL unless configured. */
  readonly id: string
  readonly url: string
  /** "http://host:port", the key for connection pools. */
  readonly origin: string
  readonly weight: number
}

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy'

/** Live counters, written only by the endpoint and its leases. */
export interface EndpointStats {
  /** Requests dispatched and not yet finished. */
  readonly inflight: number
  /** Open upstream connections (L4) or in-flight requests (L7 with keep-alive). */
  readonly connections: number
  readonly requests: number
  readonly failures: number
  readonly consecutiveFailures: number
  /** Peak EWMA of response latency (time to response headers), ms; 0 before the first sample. */
  readonly latencyEwmaMs: number
  readonly latencySamples: number
}

export interface Outcome {
  readonly ok: boolean
  readonly status?: number
  /** Time to response headers (or to failure), ms. */
  readonly latencyMs: number
}

/** What a request is expected to cost an endpoint, for router-side accounting of LLM work. */
export interface LeaseCost {
  /** Prompt tokens the engine must prefill (after any expected prefix-cache hit). */
  readonly prefillTokens?: number
  /** Tokens of KV the request will hold: prompt plus expected output. */
  readonly kvTokens?: number
}

export interface Lease {
  readonly endpoint: Endpoint
  /** The first response token arrived: the prefill part of the cost is done. */
  firstToken(): void
  /** Ends the lease. Only the first call counts. */
  end(outcome: Outcome): void
}

export interface EndpointDeps {
  readonly clock: Clock
  /** Called when drain or health changes, so the owning group rebuilds its eligible snapshot. */
  readonly onEligibilityChange?: (() => void) | undefined
}

export interface EndpointOptions {
  /** Decay time constant for the peak EWMA, ms. */
  readonly latencyDecayMs?: number
}

/**
 * One upstream endpoint's accounting: the one place where in-flight work goes up and down.
 * It owns no sockets; connection pools are keyed by `spec.origin`.
 */
export class Endpoint {
  #spec: EndpointSpec
  #clock: Clock
  #decayMs: number
  #inflight = 0
  #requests = 0
  #failures = 0
  #consecutiveFailures = 0
  #latencyEwmaMs = 0
  #latencySamples = 0
  #latencyAtMs = 0
  #pendingPrefillTokens = 0
  #kvTokens = 0
  #enabled = true
  #health: HealthStatus = 'unknown'
  #onEligibilityChange: (() => void) | undefined

  constructor(spec: EndpointSpec, deps: EndpointDeps, options: EndpointOptions = {}) {
    this.#spec = spec
    this.#clock = deps.clock
    this.#onEligibilityChange = deps.onEligibilityChange
    this.#decayMs = options.latencyDecayMs ?? 10_000
  }

  get spec(): EndpointSpec {
    return this.#spec
  }

  get id(): string {
    return this.#spec.id
  }

  get weight(): number {
    return this.#spec.weight
  }

  /**
   * A reload that changes only the weight keeps this endpoint, so the work in flight on it (and
   * the leases that will end it) stays counted. The owning group rebuilds its snapshot.
   */
  setWeight(weight: number): void {
    if (this.#spec.weight === weight) return
    this.#spec = { ...this.#spec, weight }
  }

  get enabled(): boolean {
    return this.#enabled
  }

  /** Admin drain: separate from health, so a drained endpoint keeps its health state. */
  setEnabled(enabled: boolean): void {
    if (this.#enabled === enabled) return
    this.#enabled = enabled
    this.#onEligibilityChange?.()
  }

  get health(): HealthStatus {
    return this.#health
  }

  setHealth(health: HealthStatus): void {
    if (this.#health === health) return
    this.#health = health
    this.#onEligibilityChange?.()
  }

  get stats(): EndpointStats {
    return {
      inflight: this.#inflight,
      connections: this.#inflight,
      requests: this.#requests,
      failures: this.#failures,
      consecutiveFailures: this.#consecutiveFailures,
      latencyEwmaMs: this.latencyEwmaMs,
      latencySamples: this.#latencySamples,
    }
  }

  get inflight(): number {
    return this.#inflight
  }

  /** Peak EWMA of latency, ms. Pickers add exploration so a once-slow endpoint is re-sampled. */
  get latencyEwmaMs(): number {
    return this.#latencyEwmaMs
  }

  get latencySamples(): number {
    return this.#latencySamples
  }

  /** Uncached prompt tokens dispatched here whose first token has not come back yet. */
  get pendingPrefillTokens(): number {
    return this.#pendingPrefillTokens
  }

  /** KV tokens held by in-flight requests, as estimated at dispatch. */
  get kvTokens(): number {
    return this.#kvTokens
  }

  begin(cost?: LeaseCost): Lease {
    this.#inflight++
    this.#requests++
    let prefill = cost?.prefillTokens ?? 0
    const kv = cost?.kvTokens ?? 0
    this.#pendingPrefillTokens += prefill
    this.#kvTokens += kv
    let ended = false
    const endpoint = this
    return {
      endpoint,
      firstToken() {
        endpoint.#pendingPrefillTokens -= prefill
        prefill = 0
      },
      end(outcome) {
        if (ended) return
        ended = true
        endpoint.#pendingPrefillTokens -= prefill
        prefill = 0
        endpoint.#kvTokens -= kv
        endpoint.#finish(outcome)
      },
    }
  }

  #finish(outcome: Outcome): void {
    this.#inflight--
    if (outcome.ok) {
      this.#consecutiveFailures = 0
    } else {
      this.#failures++
      this.#consecutiveFailures++
    }
    this.#observeLatency(outcome.latencyMs)
  }

  // Peak EWMA (Finagle): jump up to a slow sample at once, decay toward fast ones over time.
  #observeLatency(latencyMs: number): void {
    const now = this.#clock.now()
    if (this.#latencySamples === 0) {
      this.#latencyEwmaMs = latencyMs
    } else {
      if (latencyMs > this.#latencyEwmaMs) {
        this.#latencyEwmaMs = latencyMs
      } else {
        const elapsed = Math.max(0, now - this.#latencyAtMs)
        const w = Math.exp(-elapsed / this.#decayMs)
        this.#latencyEwmaMs = this.#latencyEwmaMs * w + latencyMs * (1 - w)
      }
    }
    this.#latencyAtMs = now
    this.#latencySamples++
  }
}
