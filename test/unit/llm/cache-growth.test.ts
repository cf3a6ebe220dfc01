import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createCacheGrowth } from '../../../src/llm/cache-growth.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('cache growth', () => {
  it('adds what each endpoint takes in, halving it every half-life', () => {
    const clock = createManualClock()
    const growth = createCacheGrowth({ halfLifeMs: 1_000 }, { clock })
    assert.equal(growth.tokens('e0'), 0)
    growth.grow('e0', 800)
    growth.grow('e1', 100)
    clock.advance(1_000)
    growth.grow('e0', 100)
    assert.equal(growth.tokens('e0'), 500)
    clock.advance(2_000)
    assert.equal(growth.tokens('e0'), 125)
    assert.equal(growth.tokens('e1'), 12.5)
  })

  it('forgets endpoints that left', () => {
    const growth = createCacheGrowth({ halfLifeMs: 1_000 }, { clock: createManualClock() })
    growth.grow('e0', 10)
    growth.grow('e1', 10)
    growth.retainOnly(new Set(['e1']))
    assert.equal(growth.tokens('e0'), 0)
    assert.equal(growth.tokens('e1'), 10)
  })
})
