import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { evaluateOutputPrediction } from '../../../src/bench/output-prediction-eval.ts'

describe('output prediction evaluation', () => {
  it('scores every predictor online, against the truth it has not yet seen', () => {
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      inputTokens: 100 + i,
      outputTokens: 50,
    }))
    const report = evaluateOutputPrediction(rows, { maxTokens: 1024 })
    assert.equal(report.requests, 1000)
    const byName = new Map(report.predictors.map((p) => [p.predictor, p]))
    assert.deepEqual(
      [...byName.keys()],
      ['sketch', 'sketch, no prompt bucket', 'global mean', 'max_tokens'],
    )
    const sketch = byName.get('sketch')!
    assert.equal(sketch.medianRatio, 1)
    assert.equal(sketch.p50AbsErr, 0)
    assert.ok(sketch.within2xShare > 0.95)
    assert.ok(sketch.maePct < 10, `${sketch.maePct}`)
    const cap = byName.get('max_tokens')!
    assert.equal(cap.medianRatio, 1024 / 50)
    assert.equal(cap.p90Coverage, 1)
    assert.equal(cap.within2xShare, 0)
    assert.equal(byName.get('global mean')!.p90Coverage, undefined)
  })

  it('scores the remainder of responses that got past each checkpoint, conditional and not', () => {
    // Half the outputs are 10 tokens, half 400: the mean is 205, yet a response past 16 tokens
    // has 384 to go.
    const rows = Array.from({ length: 2000 }, (_, i) => ({
      inputTokens: 500,
      outputTokens: i % 2 === 0 ? 10 : 400,
    }))
    const { remaining } = evaluateOutputPrediction(rows, { maxTokens: 1024 })
    assert.deepEqual(
      remaining.map((r) => [r.generated, r.requests]),
      [
        [16, 1000],
        [64, 1000],
        [256, 1000],
      ],
    )
    const at16 = remaining[0]!
    assert.ok(
      Math.abs(at16.conditionalSumRatio - 1) < 0.1,
      `conditional ${at16.conditionalSumRatio}`,
    )
    assert.ok(at16.unconditionalSumRatio < 0.6, `mean − g ${at16.unconditionalSumRatio}`)
    assert.ok(at16.conditionalMaePct < at16.unconditionalMaePct)
  })
})
