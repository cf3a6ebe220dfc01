import type { Clock } from '../util/clock.ts'
import { createDecodePace, type DecodePace } from './decode-pace.ts'
import { createPinnedBlocks, type PinnedBlocks } from './pinned-blocks.ts'

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
  /**
   * The request says nothing of how the endpoint serves: it never reached it (held, then moved,
   * shed or given up), or its client left first. Neither a success, which would end a failing
   * endpoint's streak of failures, nor a failure; its latency counts only as evidence of slowness.
   */
  readonly isNeutral?: boolean
}

/** How a request that says nothing of its endpoint (never sent, or its client gone) ends there. */
export const NEUTRAL_OUTCOME: Outcome = { ok: true, status: 0, latencyMs: 0, isNeutral: true }

/** What a request is expected to cost an endpoint, for router-side accounting of LLM work. */
export interface LeaseCost {
  /** Prompt tokens the engine must prefill (after any expected prefix-cache hit). */
  readonly prefillTokens?: number
  /** Tokens of KV the request will hold: prompt plus expected output. */
  readonly kvTokens?: number
  /**
   * The KV the request holds once it has generated this many tokens (each of its sequences, when
   * it asked for several): the prompt, what it has generated, and the output still expected given
   * that it has come this far. Without it, `kvTokens` stands until the lease ends.
   */
  readonly kvTokensAfter?: ((generatedTokens: number) => number) | undefined
  /**
   * The prompt's block hashes, which the request keeps in the engine's KV cache while it lives.
   * Their tokens (`pinnedBlockTokens` each) are not in `kvTokens`: the endpoint charges a block
   * once, while any request in flight holds it, as the engine's prefix cache keeps one copy (see
   * `pinnedPrefixBlocks`).
   */
  readonly pinnedBlocks?: readonly number[] | undefined
  readonly pinnedBlockTokens?: number | undefined
}

export interface Lease {
  readonly endpoint: Endpoint
  /** The first response token arrived: the prefill part of the cost is done. */
  firstToken(): void
  /**
   * The response has generated this many tokens so far, per sequence (call it as they pass; cheap
   * when nothing is due): one a decode step, so the pace it feeds is the endpoint's step time.
   * Re-estimates the KV held at 1, 2, 4, 8… tokens, and every `PACE_EVERY_TOKENS` feeds the
   * endpoint's decode pace.
   */
  progress(generatedTokens: number): void
  /**
   * The client is slower than the engine (its socket pushed back): tokens now pass at its pace,
   * so the span since the last decode-pace sample says nothing of the endpoint's. The next
   * `progress` starts a new span instead of sampling it.
   */
  clientStalled(): void
  /** Ends the lease. Only the first call counts. */
  end(outcome: Outcome): void
}

/**
 * Prefill ends remembered per endpoint, for `prefillsDoneSince`, this router's and the other
 * replicas': enough for a busy endpoint over the life of an engine-metrics snapshot (3 s by
 * default, so 340 prefills a second across the replicas sharing it). 8 KB an endpoint.
 */
const RECENT_PREFILLS = 1024
/** Tokens between a stream's decode-pace samples. */
const PACE_EVERY_TOKENS = 16
/** Decode-pace evidence counts half after this long. */
const PACE_HALF_LIFE_MS = 2_000

export interface EndpointDeps {
  readonly clock: Clock
  /** Called when drain or health changes, so the owning group rebuilds its eligible snapshot. */
  readonly onEligibilityChange?: (() => void) | undefined
  /** Called when this router's own work here changes, for announcing it to router replicas. */
  readonly onLoadChange?: ((endpoint: Endpoint) => void) | undefined
}

/**
 * Work in flight on an endpoint as one router counts it: what router replicas tell each other, so
 * each places requests knowing the others' (see `load-peers.ts`).
 */
export interface RouterLoad {
  readonly inflight: number
  /** Uncached prompt tokens placed here whose first token has not come back. */
  readonly prefillTokens: number
  readonly prefillRequests: number
  readonly kvTokens: number
}

export const NO_ROUTER_LOAD: RouterLoad = Object.freeze({
  inflight: 0,
  prefillTokens: 0,
  prefillRequests: 0,
  kvTokens: 0,
})

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
  /** Leases begun with prefill to do; with `#ownPrefillsDone`, how many still await it. */
  #prefillsBegun = 0
  #ownPrefillsDone = 0
  // When the latest prefills ended (first token, or the request ended first), this router's and
  // the other replicas': a ring, newest at `#prefillsDone - 1`.
  #prefillDoneAtMs = new Float64Array(RECENT_PREFILLS)
  #prefillsDone = 0
  #kvTokens = 0
  #pinned: PinnedBlocks | undefined
  #decodePace: DecodePace
  #enabled = true
  #health: HealthStatus = 'unknown'
  #onEligibilityChange: (() => void) | undefined
  #onLoadChange: ((endpoint: Endpoint) => void) | undefined
  /** The other router replicas' work here, summed, as they last told it. */
  #peers: RouterLoad = NO_ROUTER_LOAD
  /** What they are guessed to have placed here in the last moments, not yet told (see load-peers). */
  #guessed: RouterLoad = NO_ROUTER_LOAD

  constructor(spec: EndpointSpec, deps: EndpointDeps, options: EndpointOptions = {}) {
    this.#spec = spec
    this.#clock = deps.clock
    this.#onEligibilityChange = deps.onEligibilityChange
    this.#onLoadChange = deps.onLoadChange
    this.#decayMs = options.latencyDecayMs ?? 10_000
    this.#decodePace = createDecodePace({ halfLifeMs: PACE_HALF_LIFE_MS }, deps)
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

  /**
   * Requests in flight here: this router's, plus the other replicas' when they share their load.
   * The counters below count the same way; `own` is this router's part alone.
   */
  get inflight(): number {
    return this.#inflight + this.#peers.inflight + this.#guessed.inflight
  }

  /** This router's own work here: what it announces to the other replicas, and its metrics. */
  get own(): RouterLoad & { readonly prefillsDone: number } {
    return {
      inflight: this.#inflight,
      prefillTokens: this.#pendingPrefillTokens,
      prefillRequests: this.#prefillsBegun - this.#ownPrefillsDone,
      kvTokens: this.#kvTokens,
      prefillsDone: this.#ownPrefillsDone,
    }
  }

  /** The other router replicas' work here, as they last announced it. */
  get peers(): RouterLoad {
    return this.#peers
  }

  /**
   * The other replicas' work here, summed, replacing what they told before, and what they are
   * guessed to have placed since; `prefillsDone` of their prompts got their first token since
   * (counted now, for `prefillsDoneSince`).
   */
  setPeerLoad(announced: RouterLoad, guessed: RouterLoad, prefillsDone: number): void {
    this.#peers = announced
    this.#guessed = guessed
    // The ring remembers no more than this many anyway.
    const ends = Math.min(prefillsDone, RECENT_PREFILLS)
    const nowMs = ends > 0 ? this.#clock.now() : 0
    for (let i = 0; i < ends; i++) this.#recordPrefillDone(nowMs)
  }

  /** Peak EWMA of latency, ms. Pickers add exploration so a once-slow endpoint is re-sampled. */
  get latencyEwmaMs(): number {
    return this.#latencyEwmaMs
  }

  get latencySamples(): number {
    return this.#latencySamples
  }

  /**
   * Attempts a request here is expected to take to succeed, 1 + the failures since its last
   * success: with failures independent at rate f, the run of them behind the latest request is
   * f / (1 - f) long on average, so this estimates 1 / (1 - f), the geometric mean of attempts.
   * Pickers scale the cost they already compute by it: an endpoint that fails at once looks idle
   * and fast, and would otherwise draw most of the traffic (the black hole). 1 on a healthy
   * endpoint, so its costs are unchanged; one success, which a picker's exploration or a tie
   * eventually gives it, restores it.
   */
  get attemptsPerSuccess(): number {
    return 1 + this.#consecutiveFailures
  }

  /** Uncached prompt tokens dispatched here whose first token has not come back yet. */
  get pendingPrefillTokens(): number {
    return this.#pendingPrefillTokens + this.#peers.prefillTokens + this.#guessed.prefillTokens
  }

  /**
   * Uncached prompt tokens placed here awaiting their first token that some router counted: this
   * one's and what the others announced, without the guess of their last moments' placements.
   * What an engine's measured TTFT can be explained by (capacity learning).
   */
  get countedPrefillTokens(): number {
    return this.#pendingPrefillTokens + this.#peers.prefillTokens
  }

  /** Requests dispatched here with prefill to do whose first token has not come back yet. */
  get pendingPrefillRequests(): number {
    const others = this.#peers.prefillRequests + this.#guessed.prefillRequests
    return this.#prefillsBegun - this.#ownPrefillsDone + others
  }

  /**
   * Requests whose prefill ended here at or after `atMs`: with `pendingPrefillRequests`, at most
   * how many of the requests this router counts (its own, and those other replicas announced) an
   * engine scrape taken at `atMs` could have seen waiting. The others' ends are timed when heard.
   * Only the latest `RECENT_PREFILLS` ends are remembered; when every one of them is that recent
   * and older ones were forgotten, how many ended is unknown, and the bound is infinite.
   */
  prefillsDoneSince(atMs: number): number {
    const known = Math.min(this.#prefillsDone, RECENT_PREFILLS)
    // Ends are in time order: find how many of the newest `known` are at or after `atMs`.
    let low = 0
    let high = known
    while (low < high) {
      const mid = (low + high) >>> 1
      const index = (this.#prefillsDone - 1 - mid) % RECENT_PREFILLS
      if (this.#prefillDoneAtMs[index]! < atMs) high = mid
      else low = mid + 1
    }
    return low === RECENT_PREFILLS && this.#prefillsDone > RECENT_PREFILLS
      ? Number.POSITIVE_INFINITY
      : low
  }

  /**
   * How many leading blocks of `hashes` (at most `limit`) a request in flight here keeps in the
   * engine's KV.
   */
  pinnedPrefixBlocks(hashes: readonly number[], limit = hashes.length): number {
    return this.#pinned === undefined ? 0 : this.#pinned.leading(hashes, limit)
  }

  /**
   * KV tokens held by in-flight requests: estimated at dispatch, and re-estimated as responses
   * stream when their cost says how (`LeaseCost.kvTokensAfter`).
   */
  get kvTokens(): number {
    return this.#kvTokens + this.#peers.kvTokens + this.#guessed.kvTokens
  }

  /**
   * Milliseconds per generated token that streams here are getting now (recent seconds, all
   * streams together), or undefined when none has streamed lately. It includes the stalls that
   * prefill steps impose on decodes, so it is the inter-token latency clients see.
   */
  get decodeItlMs(): number | undefined {
    return this.#decodePace.itlMs()
  }

  begin(cost?: LeaseCost): Lease {
    this.#inflight++
    this.#requests++
    let prefill = cost?.prefillTokens ?? 0
    let kv = cost?.kvTokens ?? 0
    this.#pendingPrefillTokens += prefill
    if (prefill > 0) this.#prefillsBegun++
    this.#kvTokens += kv
    const pinned = cost?.pinnedBlocks
    if (pinned !== undefined && pinned.length > 0) {
      this.#pinned ??= createPinnedBlocks()
      this.#kvTokens += this.#pinned.pin(pinned, cost?.pinnedBlockTokens ?? 0)
    }
    this.#onLoadChange?.(this)
    let ended = false
    // Progress: the next token count at which KV is re-estimated, and the last pace sample.
    let nextKvAt = 1
    let paceTokens = 0
    let paceAtMs = 0
    let paceStalled = false
    const endpoint = this
    return {
      endpoint,
      firstToken() {
        if (prefill <= 0) return
        endpoint.#prefillDone(prefill)
        prefill = 0
        endpoint.#onLoadChange?.(endpoint)
      },
      progress(generated) {
        if (ended) return
        if (paceTokens === 0 || paceStalled) {
          // A new span starts: the first token, or the first after the client pushed back.
          if (generated >= 1) {
            paceTokens = generated
            paceAtMs = endpoint.#clock.now()
            paceStalled = false
          }
        } else if (generated - paceTokens >= PACE_EVERY_TOKENS) {
          const now = endpoint.#clock.now()
          endpoint.#decodePace.add(generated - paceTokens, now - paceAtMs)
          paceTokens = generated
          paceAtMs = now
        }
        if (generated >= nextKvAt && cost?.kvTokensAfter) {
          while (nextKvAt <= generated) nextKvAt *= 2
          const next = cost.kvTokensAfter(generated)
          endpoint.#kvTokens += next - kv
          kv = next
          endpoint.#onLoadChange?.(endpoint)
        }
      },
      clientStalled() {
        paceStalled = true
      },
      end(outcome) {
        if (ended) return
        ended = true
        endpoint.#prefillDone(prefill)
        prefill = 0
        endpoint.#kvTokens -= kv
        if (pinned !== undefined && pinned.length > 0 && endpoint.#pinned) {
          endpoint.#kvTokens -= endpoint.#pinned.unpin(pinned)
        }
        endpoint.#finish(outcome)
        // Fractional charges (per-block shares, predicted outputs) leave rounding dust: with
        // nothing in flight nothing is held.
        if (endpoint.#inflight === 0) endpoint.#kvTokens = 0
        endpoint.#onLoadChange?.(endpoint)
      },
    }
  }

  #prefillDone(prefill: number): void {
    if (prefill <= 0) return
    this.#pendingPrefillTokens -= prefill
    this.#ownPrefillsDone++
    this.#recordPrefillDone(this.#clock.now())
  }

  #recordPrefillDone(nowMs: number): void {
    this.#prefillDoneAtMs[this.#prefillsDone % RECENT_PREFILLS] = nowMs
    this.#prefillsDone++
  }

  #finish(outcome: Outcome): void {
    this.#inflight--
    const isCompletion = outcome.ok && outcome.isNeutral !== true
    if (isCompletion) {
      this.#consecutiveFailures = 0
    } else if (outcome.isNeutral !== true) {
      this.#failures++
      this.#consecutiveFailures++
    }
    // A failure is no completion: one that came fast says nothing about how fast a request is
    // served, and taken as a sample it pulled the latency of an endpoint that fails at once toward
    // zero. One slower than the estimate still raises it (a timeout is evidence of slowness).
    if (isCompletion || (this.#latencySamples > 0 && outcome.latencyMs > this.#latencyEwmaMs)) {
      this.#observeLatency(outcome.latencyMs)
    }
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
