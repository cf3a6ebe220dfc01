import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  capBucketOf,
  createOutputLengthPredictor,
  promptBucketOf,
} from '../../../src/llm/output-length-predictor.ts'
import { createSeededRandom, type Random } from '../../../src/util/random.ts'

const chat = { model: 'llama', route: 'chat' }

/** An exponential sample with the given mean, rounded to whole tokens, at least one. */
function exponential(random: Random, mean: number): number {
  return Math.max(1, Math.round(-mean * Math.log(1 - random())))
}

const near = (actual: number, expected: number, tolerance: number, what = ''): void => {
  assert.ok(
    Math.abs(actual / expected - 1) <= tolerance,
    `${what} ${actual} not within ${tolerance * 100} % of ${expected}`,
  )
}

describe('output length predictor', () => {
  it('buckets prompt lengths and caps by powers of two', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 1000, 1024].map(promptBucketOf), [0, 1, 2, 2, 3, 10, 11])
    assert.equal(capBucketOf(1000), capBucketOf(1024))
    assert.notEqual(capBucketOf(1024), capBucketOf(1025))
    assert.equal(capBucketOf(undefined), 'none')
  })

  it('falls back to the prior, capped at max_tokens, when nothing is known', () => {
    const predictor = createOutputLengthPredictor()
    const cold = predictor.predict(chat, 500, undefined)
    assert.equal(cold.basis, 'prior')
    assert.equal(cold.samples, 0)
    near(cold.p50, 256, 0.07, 'p50')
    near(cold.p90, 1024, 0.07, 'p90')
    const capped = predictor.predict(chat, 500, 100)
    assert.equal(capped.p50, 100)
    assert.equal(capped.p90, 100)
  })

  it('never predicts more than max_tokens', () => {
    const predictor = createOutputLengthPredictor()
    const random = createSeededRandom(3)
    for (let i = 0; i < 2000; i++) {
      predictor.observe(chat, 800, 4096, 500 + Math.floor(random() * 3000))
    }
    for (const cap of [1, 7, 64, 300, 1000, 4096]) {
      const p = predictor.predict(chat, 800, cap)
      assert.ok(p.p50 <= cap && p.p90 <= cap && p.mean <= cap, `cap ${cap}: ${JSON.stringify(p)}`)
      assert.ok(predictor.quantile(chat, 800, cap, 0.99) <= cap)
    }
    assert.equal(predictor.predict(chat, 800, 0).p90, 0, 'embeddings generate nothing')
  })

  it('learns a length past the cap as the cap, so a misread request cannot skew other caps', () => {
    const predictor = createOutputLengthPredictor()
    // A batch misread as one prompt reports 32 sequences' output as one: 6,400 of at most 256.
    for (let i = 0; i < 200; i++) predictor.observe(chat, 800, 256, 6400)
    const uncapped = predictor.predict(chat, 800, undefined)
    // Within the sketch's bucket width of 256, far from 6,400.
    assert.ok(uncapped.p90 < 300, `learned ${JSON.stringify(uncapped)}`)
  })

  it('estimates the quantiles of a known distribution within tolerance', () => {
    const predictor = createOutputLengthPredictor({ halfLifeSamples: Number.POSITIVE_INFINITY })
    const random = createSeededRandom(5)
    for (let i = 0; i < 20_000; i++) predictor.observe(chat, 1000, 4096, exponential(random, 200))
    const p = predictor.predict(chat, 1000, 4096)
    assert.equal(p.basis, 'cell')
    near(p.p50, 200 * Math.LN2, 0.06, 'p50')
    near(p.p90, 200 * Math.LN10, 0.06, 'p90')
    near(p.mean, 200, 0.06, 'mean')
    near(predictor.quantile(chat, 1000, 4096, 0.25), -200 * Math.log(0.75), 0.08, 'p25')
  })

  it('predicts the output still to come given how far a response has got', () => {
    const predictor = createOutputLengthPredictor({ halfLifeSamples: Number.POSITIVE_INFINITY })
    const random = createSeededRandom(7)
    // Exponential lengths are memoryless: however far a response has got, the mean remainder is
    // the mean itself.
    for (let i = 0; i < 20_000; i++) predictor.observe(chat, 1000, 4096, exponential(random, 200))
    for (const generated of [1, 50, 200, 400]) {
      near(predictor.remaining(chat, 1000, 4096, generated), 200, 0.1, `after ${generated}`)
    }
    // Uniform lengths: the remainder shrinks as the response nears the longest seen.
    const uniform = createOutputLengthPredictor({ halfLifeSamples: Number.POSITIVE_INFINITY })
    for (let i = 0; i < 20_000; i++) uniform.observe(chat, 1000, 4096, 1000 + (i % 1000))
    near(uniform.remaining(chat, 1000, 4096, 1), 1500, 0.05, 'from the start')
    near(uniform.remaining(chat, 1000, 4096, 1500), 250, 0.1, 'halfway through the range')
    // Past the sketch's range, a response is expected to go on a quarter as far again.
    assert.equal(uniform.remaining(chat, 1000, 1_000_000, 200_000), 50_000)
    // Never past the cap, nothing at it.
    assert.equal(uniform.remaining(chat, 1000, 1600, 1590), 10)
    assert.equal(uniform.remaining(chat, 1000, 1600, 1600), 0)
  })

  it('conditions on the prompt-length bucket', () => {
    const predictor = createOutputLengthPredictor()
    for (let i = 0; i < 300; i++) {
      predictor.observe(chat, 100, 2048, 40)
      predictor.observe(chat, 6000, 2048, 600)
    }
    near(predictor.predict(chat, 120, 2048).p50, 40, 0.1, 'short prompts')
    near(predictor.predict(chat, 5000, 2048).p50, 600, 0.1, 'long prompts')
  })

  it('backs off to the route, then the model, when a cell has too few samples', () => {
    const predictor = createOutputLengthPredictor()
    for (let i = 0; i < 500; i++) predictor.observe(chat, 1000, 1024, 400)

    const newBucket = predictor.predict(chat, 30_000, 1024)
    assert.equal(newBucket.basis, 'route')
    near(newBucket.p50, 400, 0.1, 'unseen prompt bucket')

    const summarise = { model: 'llama', route: 'summarise' }
    const newRoute = predictor.predict(summarise, 1000, 1024)
    assert.equal(newRoute.basis, 'model')
    near(newRoute.p50, 400, 0.1, 'unseen route')

    const newCap = predictor.predict(summarise, 1000, 4096)
    assert.equal(newCap.basis, 'model-any-cap')
    near(newCap.p50, 400, 0.1, 'unseen cap')

    assert.equal(predictor.predict({ model: 'other', route: 'chat' }, 1000, 1024).basis, 'prior')
  })

  it('moves a new cell from its parent to its own data as samples arrive', () => {
    const predictor = createOutputLengthPredictor()
    for (let i = 0; i < 500; i++) predictor.observe(chat, 1000, 1024, 400)
    const summarise = { model: 'llama', route: 'summarise' }
    const p50s: number[] = []
    for (const n of [2, 8, 32, 200]) {
      while (p50s.length < n) {
        predictor.observe(summarise, 1000, 1024, 50)
        p50s.push(0)
      }
      p50s[n - 1] = predictor.predict(summarise, 1000, 1024).p50
    }
    const [after2, after8, after32, after200] = [p50s[1]!, p50s[7]!, p50s[31]!, p50s[199]!]
    assert.ok(after2 > 300, `after 2 samples it still leans on the model: ${after2}`)
    assert.ok(after8 <= after2 && after32 <= after8, `${after2} ≥ ${after8} ≥ ${after32}`)
    near(after200, 50, 0.1, 'after 200 samples')
    assert.equal(predictor.predict(summarise, 1000, 1024).basis, 'cell')
  })

  it('keeps memory bounded under many keys', () => {
    const predictor = createOutputLengthPredictor({ maxCells: 64 })
    for (let i = 0; i < 10_000; i++) {
      predictor.observe({ model: `m${i % 7}`, route: `tenant-${i}` }, i, 256 + (i % 5000), 100)
      assert.ok(predictor.cells <= 64)
    }
    // Old tenants were forgotten; a tenant written now still gets a cell of its own.
    assert.notEqual(predictor.predict({ model: 'm0', route: 'tenant-0' }, 0, 256).basis, 'cell')
    const fresh = { model: 'm1', route: 'fresh' }
    for (let i = 0; i < 100; i++) predictor.observe(fresh, 10, 256, 7)
    assert.ok(predictor.cells <= 64)
    const p = predictor.predict(fresh, 10, 256)
    assert.equal(p.basis, 'cell')
    assert.equal(p.p50, 7)
  })

  it('adapts when output lengths shift', () => {
    const predictor = createOutputLengthPredictor({ halfLifeSamples: 100 })
    const random = createSeededRandom(9)
    for (let i = 0; i < 2000; i++) predictor.observe(chat, 1000, 4096, exponential(random, 100))
    near(predictor.predict(chat, 1000, 4096).p50, 100 * Math.LN2, 0.15, 'before the shift')
    for (let i = 0; i < 600; i++) predictor.observe(chat, 1000, 4096, exponential(random, 1000))
    near(predictor.predict(chat, 1000, 4096).p50, 1000 * Math.LN2, 0.15, 'after the shift')
  })

  it('predicts the same from the same history', () => {
    const run = () => {
      const predictor = createOutputLengthPredictor()
      const random = createSeededRandom(1)
      const out: number[] = []
      for (let i = 0; i < 500; i++) {
        const prompt = 1 + Math.floor(random() * 8000)
        out.push(predictor.predict(chat, prompt, 1024).p90)
        predictor.observe(chat, prompt, 1024, exponential(random, 150))
      }
      return out
    }
    assert.deepEqual(run(), run())
  })
})
