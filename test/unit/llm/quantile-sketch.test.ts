import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  bucketLow,
  bucketOf,
  createQuantileSketch,
  meanOfShares,
  quantileOfShares,
  SKETCH_BUCKETS,
} from '../../../src/llm/quantile-sketch.ts'
import { createSeededRandom } from '../../../src/util/random.ts'

describe('quantile sketch', () => {
  it('puts every value in the bucket whose bounds hold it', () => {
    for (const value of [0, 1, 7, 8, 9, 15, 16, 100, 1000, 4095, 4096, 100_000]) {
      const b = bucketOf(value)
      assert.ok(bucketLow(b) <= value && value < bucketLow(b + 1), `${value} in bucket ${b}`)
    }
    assert.equal(bucketOf(10_000_000), SKETCH_BUCKETS - 1)
    assert.equal(bucketOf(-3), 0)
  })

  it('is exact for small counts and within 1/8 of the value above', () => {
    const sketch = createQuantileSketch()
    sketch.observe(5)
    assert.equal(sketch.quantile(0.5), 5)
    const big = createQuantileSketch()
    big.observe(1000)
    assert.ok(Math.abs(big.quantile(0.5) / 1000 - 1) < 0.125)
  })

  it('estimates quantiles of a log-normal sample within 5 %', () => {
    const random = createSeededRandom(11)
    const sketch = createQuantileSketch()
    const values: number[] = []
    for (let i = 0; i < 20_000; i++) {
      // Box-Muller: a log-normal with median 150, like chat output lengths.
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
      const value = Math.round(150 * Math.exp(0.9 * z))
      values.push(value)
      sketch.observe(value)
    }
    values.sort((a, b) => a - b)
    for (const q of [0.1, 0.5, 0.9, 0.99]) {
      const truth = values[Math.floor(q * values.length)]!
      const estimate = sketch.quantile(q)
      assert.ok(Math.abs(estimate / truth - 1) < 0.05, `q${q}: ${estimate} vs ${truth}`)
    }
  })

  it('halves an old sample after halfLifeSamples newer ones', () => {
    const sketch = createQuantileSketch({ halfLifeSamples: 10 })
    sketch.observe(100)
    assert.ok(Math.abs(sketch.weight - 1) < 1e-9, `${sketch.weight}`)
    for (let i = 0; i < 10; i++) sketch.observe(3, 0)
    assert.ok(Math.abs(sketch.weight - 0.5) < 1e-9, `${sketch.weight}`)
  })

  it('keeps its weights finite over millions of decayed observations', () => {
    const sketch = createQuantileSketch({ halfLifeSamples: 5 })
    for (let i = 0; i < 2_000_000; i++) sketch.observe(i % 2 === 0 ? 10 : 1000)
    assert.ok(Number.isFinite(sketch.weight) && sketch.weight > 0)
    const median = sketch.quantile(0.5)
    assert.ok(median >= 10 && median <= 1000)
  })

  it('mixes sketches by weight', () => {
    const low = createQuantileSketch()
    const high = createQuantileSketch()
    for (let i = 0; i < 100; i++) {
      low.observe(10)
      high.observe(1000)
    }
    const shares = new Float64Array(SKETCH_BUCKETS)
    low.addShares(shares, 0.8)
    high.addShares(shares, 0.2)
    assert.equal(quantileOfShares(shares, 0.5), 10)
    assert.ok(quantileOfShares(shares, 0.9) > 900)
    const mean = meanOfShares(shares)
    assert.ok(Math.abs(mean - (0.8 * 10 + 0.2 * 1000)) < 0.05 * mean, `${mean}`)
    assert.ok(meanOfShares(shares, 100) <= 100)
  })
})
