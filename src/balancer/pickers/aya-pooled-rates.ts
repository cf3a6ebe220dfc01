import type { EndpointCapacity } from '../../llm/endpoint-capacity.ts'
import type { Endpoint } from '../../upstream/endpoint.ts'

/**
 * Endpoints' learned prefill rates, pooled: log-rates shrink toward the fleet's by the share of
 * their spread that sampling noise explains (empirical Bayes), so a few noisy early samples
 * cannot tell identical replicas apart, while a GPU that is really slower shows as slower once
 * its samples say so. One read of each estimate per decision; scratch arrays are reused.
 */
export interface PooledRates {
  /** Reads every endpoint's estimate; `rateOf(i)` then answers for `eligible[i]`. */
  pool(eligible: readonly Endpoint[], capacity: EndpointCapacity | undefined): void
  rateOf(index: number): number
}

export function createPooledRates(options: {
  /** The rate assumed where nothing has been learned, tokens/s. */
  readonly priorTokensPerSec: number
  /** Relative noise of one response's evidence; 0 uses each estimate as learned. */
  readonly rateNoise: number
}): PooledRates {
  let logRates = new Float64Array(8)
  let rateSamples = new Float64Array(8)
  let pooledLog = Math.log(options.priorTokensPerSec)
  let spreadBeyondNoise = 0
  let isLearned = false
  return {
    pool(eligible, capacity) {
      if (logRates.length < eligible.length) {
        logRates = new Float64Array(eligible.length * 2)
        rateSamples = new Float64Array(eligible.length * 2)
      }
      pooledLog = Math.log(options.priorTokensPerSec)
      spreadBeyondNoise = 0
      isLearned = capacity !== undefined
      if (!capacity) return
      let logSum = 0
      let samples = 0
      for (let i = 0; i < eligible.length; i++) {
        const estimate = capacity.get(eligible[i]!.id)
        logRates[i] = Math.log(estimate.prefillTokensPerSec)
        rateSamples[i] = estimate.samples
        logSum += logRates[i]! * estimate.samples
        samples += estimate.samples
      }
      if (samples === 0) return
      pooledLog = logSum / samples
      let spread = 0
      let noise = 0
      let sampled = 0
      for (let i = 0; i < eligible.length; i++) {
        if (rateSamples[i] === 0) continue
        spread += (logRates[i]! - pooledLog) ** 2
        noise += options.rateNoise ** 2 / rateSamples[i]!
        sampled++
      }
      spreadBeyondNoise = Math.max(0, (spread - noise) / sampled)
    },
    rateOf(index) {
      let logRate = pooledLog
      if (isLearned && rateSamples[index]! > 0) {
        const noise = options.rateNoise ** 2 / rateSamples[index]!
        const keep =
          spreadBeyondNoise + noise > 0 ? spreadBeyondNoise / (spreadBeyondNoise + noise) : 1
        logRate = pooledLog + keep * (logRates[index]! - pooledLog)
      }
      return Math.exp(logRate)
    },
  }
}
