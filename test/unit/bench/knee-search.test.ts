import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { findKnee, passesSlo } from '../../../src/bench/knee-search.ts'
import type { PolicyResult } from '../../../src/bench/policy-summary.ts'
import { formatKnee } from '../../../src/bench/report-format.ts'

const result = (ttftP90Ms: number, failed: number, completed = 1000): PolicyResult => ({
  ttftP50Ms: 0,
  ttftP90Ms,
  ttftP99Ms: 0,
  itlP50Ms: 0,
  itlP99Ms: 0,
  e2eP50Ms: 0,
  e2eP99Ms: 0,
  completed,
  failed,
  requestsPerSec: 0,
  outputTokensPerSec: 0,
  goodputPerSec: 0,
  goodRequests: 0,
  prefixHitRate: null,
  promptHitRate: null,
  imbalance: null,
  replicaPrefillShare: null,
})

describe('knee search', () => {
  it('passes on TTFT p90 within the SLO and at most 1 % failed', () => {
    assert.equal(passesSlo(result(2000, 0), 2000), true)
    assert.equal(passesSlo(result(2001, 0), 2000), false)
    assert.equal(passesSlo(result(100, 10, 990), 2000), true)
    assert.equal(passesSlo(result(100, 11, 989), 2000), false)
    assert.equal(passesSlo(result(Infinity, 0), 2000), false)
  })

  it('bisects geometrically to the asked precision', async () => {
    const tried: number[] = []
    const knee = await findKnee(
      async (r) => {
        tried.push(r)
        return r <= 7.3
      },
      { min: 1, max: 32, precision: 0.05 },
    )
    assert.ok(knee !== null && knee <= 7.3 && knee >= 7.3 / 1.05, `knee ${knee}`)
    assert.deepEqual(tried.slice(0, 2), [1, 32])
    assert.ok(tried.length <= 12)
  })

  it('ends at neighbouring doubles when the precision is finer than a double can tell apart', async () => {
    let runs = 0
    const knee = await findKnee(
      async (r) => {
        runs++
        if (runs > 200) throw new Error('bisection did not end')
        return r <= 1.5
      },
      { min: 1, max: 2, precision: 1e-300 },
    )
    assert.ok(knee !== null && knee <= 1.5 && knee > 1.5 * (1 - 1e-12), `knee ${knee}`)
    assert.ok(runs < 100, `${runs} runs`)
  })

  it('returns max when max passes and null when min fails', async () => {
    assert.equal(await findKnee(async () => true, { min: 1, max: 4, precision: 0.05 }), 4)
    assert.equal(await findKnee(async () => false, { min: 1, max: 4, precision: 0.05 }), null)
  })

  it('reads a knee at the sweep’s maximum as at least that, and none as below its minimum', () => {
    const sweep = { min: 1, max: 2 }
    assert.equal(formatKnee(2, sweep), '≥ 2')
    assert.equal(formatKnee(null, sweep), '< 1')
    assert.equal(formatKnee(1.5, sweep), '1.5')
  })
})
