import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDecodePace } from '../../../src/upstream/decode-pace.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('decode pace', () => {
  it('is unknown until a token has been seen, then the mean ms per token of every stream', () => {
    const clock = createManualClock()
    const pace = createDecodePace({ halfLifeMs: 2_000 }, { clock })
    assert.equal(pace.itlMs(), undefined)
    pace.add(16, 160) // a stream at 10 ms a token
    pace.add(16, 480) // another at 30 ms a token
    assert.equal(pace.itlMs(), 20)
  })

  it('lets recent evidence outweigh old: after a half-life the old counts half', () => {
    const clock = createManualClock()
    const pace = createDecodePace({ halfLifeMs: 2_000 }, { clock })
    pace.add(32, 320) // 10 ms a token
    clock.advance(2_000)
    pace.add(16, 800) // 50 ms a token, now
    // 16 old tokens (half of 32) at 10 ms and 16 new at 50 ms.
    assert.equal(pace.itlMs(), 30)
  })

  it('forgets an endpoint whose streams stopped, once under one token of evidence remains', () => {
    const clock = createManualClock()
    const pace = createDecodePace({ halfLifeMs: 1_000 }, { clock })
    pace.add(16, 400)
    clock.advance(3_000) // 2 tokens' worth left
    assert.equal(pace.itlMs(), 25)
    clock.advance(2_000) // half a token's worth
    assert.equal(pace.itlMs(), undefined)
  })

  it('ignores empty and nonsensical samples', () => {
    const pace = createDecodePace({ halfLifeMs: 1_000 }, { clock: createManualClock() })
    pace.add(0, 100)
    pace.add(5, -1)
    pace.add(Number.NaN, 10)
    assert.equal(pace.itlMs(), undefined)
  })
})
