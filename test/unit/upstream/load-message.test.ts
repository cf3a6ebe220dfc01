import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseLoads, tokenCount } from '../../../src/upstream/load-message.ts'

describe('load announcements on the wire', () => {
  it('takes entries of six fields (replicas from before the sent count) and of seven', () => {
    const loads = [
      ['e0', 1, 700.5, 1, 800.25, 3],
      ['e1', 2, 10, 1, 20, 4, 10],
    ]
    assert.deepEqual(parseLoads({ op: 'load', loads }), loads)
  })

  it('refuses counts that are negative or fractional, tokens past 10^12, and long ids', () => {
    const refused = [
      ['e0', -1, 0, 0, 0, 0],
      ['e0', 1.5, 0, 0, 0, 0],
      ['e0', 1, 0, 0, 0, 2 ** 60],
      ['e0', 1, 1e13, 0, 0, 0],
      ['e0', 1, 0, 0, 0, 0, -5],
      ['x'.repeat(257), 1, 0, 0, 0, 0],
      ['e0', 1, 0, 0, 0],
    ]
    for (const entry of refused) {
      assert.equal(parseLoads({ op: 'load', loads: [entry] }), undefined, JSON.stringify(entry))
    }
    assert.equal(parseLoads({ op: 'add', loads: [] }), undefined)
    assert.equal(parseLoads(null), undefined)
  })

  it('sends a count that is not a finite positive number as 0', () => {
    assert.deepEqual(
      [Number.NaN, -1e-12, Number.POSITIVE_INFINITY, 42].map(tokenCount),
      [0, 0, 0, 42],
    )
  })
})
