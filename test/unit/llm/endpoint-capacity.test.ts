import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type CapacitySample, createEndpointCapacity } from '../../../src/llm/endpoint-capacity.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const PRIOR = 10_000

/** The learner as it was before outliers were bounded: a plain ratio of decayed sums. */
function plainRatioOfSums(halfLifeMs = 60_000) {
  let work = 0
  let seconds = 0
  let atMs = 0
  return {
    observe(nowMs: number, sample: CapacitySample) {
      const decay = 0.5 ** ((nowMs - atMs) / halfLifeMs)
      atMs = nowMs
      work = work * decay + sample.prefillAheadTokens + sample.prefillTokens
      seconds = seconds * decay + sample.ttftMs / 1000
    },
    rate: () => (work + 0.25 * PRIOR) / (seconds + 0.25),
  }
}

/** A well-behaved engine: 30k tokens/s of prefill plus 20 ms of fixed overhead, ±20 % noise. */
function steadySample(i: number): CapacitySample {
  const prefillTokens = [40, 300, 1200, 4000, 8000, 150, 2500][i % 7]!
  const prefillAheadTokens = [0, 0, 3000, 0, 6000][i % 5]!
  const noise = 1 + 0.2 * Math.sin(i * 1.7)
  const ttftMs = (20 + ((prefillTokens + prefillAheadTokens) / 30_000) * 1000) * noise
  return { prefillAheadTokens, prefillTokens, ttftMs, meanItlMs: 20 }
}

function setup() {
  const clock = createManualClock()
  const capacity = createEndpointCapacity({}, { clock })
  return { clock, capacity }
}

describe('endpoint capacity', () => {
  test('reports a learned estimate only once the endpoint has answered, never the prior', () => {
    const { capacity } = setup()
    assert.equal(capacity.learned('a'), undefined)
    assert.equal(capacity.get('a').prefillTokensPerSec, PRIOR)
    capacity.observe('a', steadySample(0))
    assert.deepEqual(capacity.learned('a'), capacity.get('a'))
    assert.equal(capacity.learned('b'), undefined)
  })

  test('a steady stream of consistent samples converges to the rate the plain ratio of sums gives', () => {
    const { clock, capacity } = setup()
    const reference = plainRatioOfSums()
    for (let i = 0; i < 6000; i++) {
      clock.advance(100)
      const sample = steadySample(i)
      capacity.observe('a', sample)
      reference.observe(clock.now(), sample)
      if (i >= 50 && i % 100 === 0) {
        const ratio = capacity.get('a').prefillTokensPerSec / reference.rate()
        assert.ok(Math.abs(ratio - 1) < 0.02, `sample ${i}: ${ratio}`)
      }
    }
    const { prefillTokensPerSec } = capacity.get('a')
    assert.ok(Math.abs(prefillTokensPerSec / reference.rate() - 1) < 0.01)
    assert.ok(prefillTokensPerSec > 20_000 && prefillTokensPerSec < 30_000)
  })

  test('a prompt the engine had cached (near-zero TTFT for a long prompt) barely moves a new endpoint', () => {
    const { capacity } = setup()
    capacity.observe('a', {
      prefillAheadTokens: 0,
      prefillTokens: 100_000,
      ttftMs: 5,
      meanItlMs: 20,
    })
    const rate = capacity.get('a').prefillTokensPerSec
    assert.ok(rate < PRIOR * 1.1, `${rate}`) // a plain ratio of sums says 400k tokens/s
  })

  test('a cached prompt after a quiet spell does not make a learned endpoint look much faster', () => {
    const { clock, capacity } = setup()
    for (let i = 0; i < 2000; i++) {
      clock.advance(100)
      capacity.observe('a', {
        prefillAheadTokens: 0,
        prefillTokens: 2000,
        ttftMs: 200,
        meanItlMs: 20,
      })
    }
    clock.advance(600_000)
    capacity.observe('a', {
      prefillAheadTokens: 0,
      prefillTokens: 30_000,
      ttftMs: 15,
      meanItlMs: 20,
    })
    const rate = capacity.get('a').prefillTokensPerSec
    assert.ok(rate < PRIOR * 1.2, `${rate}`)
  })

  test('a short prompt whose first token was held back a long time barely moves the estimate', () => {
    const { capacity } = setup()
    capacity.observe('a', {
      prefillAheadTokens: 0,
      prefillTokens: 100,
      ttftMs: 30_000,
      meanItlMs: 20,
    })
    const rate = capacity.get('a').prefillTokensPerSec
    assert.ok(rate > PRIOR / 2, `${rate}`) // a plain ratio of sums says 86 tokens/s
  })

  test('consistent evidence of a rate far from the prior wins as fast as it did unbounded', () => {
    const { clock, capacity } = setup()
    const slow = plainRatioOfSums()
    const fast = plainRatioOfSums()
    for (let i = 0; i < 20; i++) {
      clock.advance(100)
      const slowSample = { prefillAheadTokens: 0, prefillTokens: 2000, ttftMs: 2000, meanItlMs: 20 }
      const fastSample = { prefillAheadTokens: 0, prefillTokens: 8000, ttftMs: 100, meanItlMs: 20 }
      capacity.observe('slow', slowSample)
      capacity.observe('fast', fastSample)
      slow.observe(clock.now(), slowSample)
      fast.observe(clock.now(), fastSample)
    }
    assert.ok(Math.abs(capacity.get('slow').prefillTokensPerSec / slow.rate() - 1) < 0.05)
    assert.ok(Math.abs(capacity.get('fast').prefillTokensPerSec / fast.rate() - 1) < 0.05)
    assert.ok(capacity.get('slow').prefillTokensPerSec < 1200)
    assert.ok(capacity.get('fast').prefillTokensPerSec > 65_000)
  })

  test('the sample count decays with the same half-life as the sums', () => {
    const { clock, capacity } = setup()
    for (let i = 0; i < 10; i++) {
      capacity.observe('a', {
        prefillAheadTokens: 0,
        prefillTokens: 1000,
        ttftMs: 100,
        meanItlMs: 20,
      })
    }
    assert.equal(capacity.get('a').samples, 10)
    clock.advance(60_000)
    assert.equal(capacity.get('a').samples, 5)
    capacity.observe('a', {
      prefillAheadTokens: 0,
      prefillTokens: 1000,
      ttftMs: 100,
      meanItlMs: 20,
    })
    assert.equal(capacity.get('a').samples, 6)
  })

  test('an endpoint that gets no traffic relaxes back to the prior', () => {
    const { clock, capacity } = setup()
    for (let i = 0; i < 200; i++) {
      clock.advance(100)
      capacity.observe('a', {
        prefillAheadTokens: 0,
        prefillTokens: 2000,
        ttftMs: 1000,
        meanItlMs: 80,
      })
    }
    const learned = capacity.get('a')
    assert.ok(learned.prefillTokensPerSec < 2100)
    clock.advance(600_000)
    // A policy that pools estimates by their samples already sees it at the fleet's rate here.
    assert.ok(capacity.get('a').samples < learned.samples / 1000)
    clock.advance(600_000)
    const relaxed = capacity.get('a')
    assert.ok(relaxed.prefillTokensPerSec > PRIOR * 0.9, `${relaxed.prefillTokensPerSec}`)
    assert.ok(relaxed.decodeStepMs < 26)
  })

  test('is deterministic on its clock', () => {
    const run = () => {
      const { clock, capacity } = setup()
      for (let i = 0; i < 500; i++) {
        clock.advance(37)
        capacity.observe('a', steadySample(i))
      }
      return capacity.get('a')
    }
    assert.deepEqual(run(), run())
  })
})
