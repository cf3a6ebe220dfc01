import type { Clock } from '../util/clock.ts'

/** What an endpoint has shown it can do, learned from its own responses. */
export interface CapacityEstimate {
  /** Effective prefill throughput, tokens per second (prompt work per second of time to first token). */
  readonly prefillTokensPerSec: number
  /** Mean gap between streamed tokens, ms: the decode step time under its load. */
  readonly decodeStepMs: number
  /** Responses the estimate rests on, counted less as they age; 0 means these are the priors. */
  readonly samples: number
}

export interface CapacitySample {
  /** Prefill tokens already pending on the endpoint when this request was dispatched. */
  readonly prefillAheadTokens: number
  /** This request's own uncached prefill tokens. */
  readonly prefillTokens: number
  readonly ttftMs: number
  /** Mean inter-token gap of this response, when it streamed at least two tokens. */
  readonly meanItlMs: number | undefined
}

export interface EndpointCapacityOptions {
  /** Assumed before any sample: a conservative single-GPU figure. */
  readonly priorPrefillTokensPerSec?: number
  readonly priorDecodeStepMs?: number
  /** Weight of the prior rate, in seconds of TTFT, so the first few responses do not swing it. */
  readonly priorSeconds?: number
  /** Weight of the prior step time, in responses. */
  readonly priorSamples?: number
  /** Samples older than this count half; an endpoint with none for a while drifts to the prior. */
  readonly halfLifeMs?: number
  /**
   * One response's rate counts as at most this many times the estimate it joins, so that a prompt
   * the engine had cached though we counted it uncached cannot swing the estimate by itself.
   */
  readonly maxSampleRateRatio?: number
  /**
   * And as at least this share of it, so that a first token something held back cannot either.
   * Far below the ceiling: fixed overhead and queueing behind decode steps make short prompts
   * look many times slower than the engine's prefill rate as a matter of course.
   */
  readonly minSampleRateRatio?: number
  /** Most endpoints tracked (LRU). */
  readonly maxEndpoints?: number
}

/**
 * Learns each endpoint's prefill rate and decode step time online, from time to first token and
 * inter-token gaps, so a fleet of mixed hardware gets proportionate work without hand-set weights.
 * Prefill rate is a ratio of decayed sums, Σ(work ahead + own prompt) ÷ Σ TTFT, which is robust to
 * the noise of single requests and keeps weighting recent load regimes more. Everything decays
 * with time, the sample count too, so an endpoint that gets no traffic relaxes to the prior (and a
 * policy pooling estimates by their samples, to the fleet's) rather than keep a bad estimate that
 * keeps it from getting the traffic that would correct it.
 */
export interface EndpointCapacity {
  get(endpointId: string): CapacityEstimate
  /** The estimate once it rests on the endpoint's own responses; undefined while it is the prior. */
  learned(endpointId: string): CapacityEstimate | undefined
  observe(endpointId: string, sample: CapacitySample): void
  /** The id now names another server: what was learned about the old one goes. */
  forget(endpointId: string): void
}

export function createEndpointCapacity(
  options: EndpointCapacityOptions,
  deps: { readonly clock: Clock },
): EndpointCapacity {
  const priorRate = options.priorPrefillTokensPerSec ?? 10_000
  const priorStep = options.priorDecodeStepMs ?? 25
  const priorSeconds = options.priorSeconds ?? 0.25
  const priorSamples = options.priorSamples ?? 3
  const halfLifeMs = options.halfLifeMs ?? 60_000
  const maxRatio = options.maxSampleRateRatio ?? 4
  const minRatio = options.minSampleRateRatio ?? 1 / 16
  const maxEndpoints = options.maxEndpoints ?? 4096
  interface State {
    work: number
    seconds: number
    itlSum: number
    itlCount: number
    samples: number
    atMs: number
  }
  const states = new Map<string, State>()
  const prior: CapacityEstimate = {
    prefillTokensPerSec: priorRate,
    decodeStepMs: priorStep,
    samples: 0,
  }
  const decayOf = (state: State, nowMs: number): number =>
    nowMs > state.atMs ? 0.5 ** ((nowMs - state.atMs) / halfLifeMs) : 1
  /** Prefill rate from (decayed) sums of work and seconds, with the prior's weight added. */
  const rateOf = (work: number, seconds: number): number =>
    (work + priorSeconds * priorRate) / (seconds + priorSeconds)

  const capacity: EndpointCapacity = {
    forget(endpointId) {
      states.delete(endpointId)
    },
    learned(endpointId) {
      const estimate = capacity.get(endpointId)
      return estimate.samples > 0 ? estimate : undefined
    },
    get(endpointId) {
      const state = states.get(endpointId)
      if (!state) return prior
      const decay = decayOf(state, deps.clock.now())
      return {
        prefillTokensPerSec: rateOf(state.work * decay, state.seconds * decay),
        decodeStepMs:
          (state.itlSum * decay + priorSamples * priorStep) /
          (state.itlCount * decay + priorSamples),
        samples: state.samples * decay,
      }
    },
    observe(endpointId, sample) {
      if (!(sample.ttftMs > 0)) return
      let state = states.get(endpointId)
      const now = deps.clock.now()
      if (!state) {
        if (states.size >= maxEndpoints) states.delete(states.keys().next().value!)
        state = { work: 0, seconds: 0, itlSum: 0, itlCount: 0, samples: 0, atMs: now }
      } else {
        states.delete(endpointId)
        const decay = decayOf(state, now)
        state.work *= decay
        state.seconds *= decay
        state.itlSum *= decay
        state.itlCount *= decay
        state.samples *= decay
        state.atMs = Math.max(state.atMs, now)
      }
      states.set(endpointId, state)
      state.samples++
      // Ratio of sums: long prefills, whose TTFT is mostly compute, outweigh short ones, whose TTFT
      // is mostly fixed overhead.
      let work = sample.prefillAheadTokens + sample.prefillTokens
      if (work > 0) {
        let seconds = sample.ttftMs / 1000
        const estimate = rateOf(state.work, state.seconds)
        // The bounds take evidence away, never add it: a too-fast sample keeps its seconds and
        // loses work (a near-zero TTFT then weighs nearly nothing), a too-slow one keeps its work
        // and loses seconds.
        work = Math.min(work, seconds * estimate * maxRatio)
        seconds = Math.min(seconds, work / (estimate * minRatio))
        state.work += work
        state.seconds += seconds
      }
      if (sample.meanItlMs !== undefined && sample.meanItlMs > 0) {
        state.itlSum += sample.meanItlMs
        state.itlCount += 1
      }
    },
  }
  return capacity
}
