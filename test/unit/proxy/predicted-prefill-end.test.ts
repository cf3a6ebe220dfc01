import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createEndpointCapacity } from '../../../src/llm/endpoint-capacity.ts'
import { predictPrefillEnd } from '../../../src/proxy/predicted-prefill-end.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('predictPrefillEnd', () => {
  it('calls back when the pending prefill should be done at the endpoint’s rate', () => {
    const clock = createManualClock()
    const capacity = createEndpointCapacity({ priorPrefillTokensPerSec: 10_000 }, { clock })
    let prefilledAtMs: number | undefined
    predictPrefillEnd({ endpointId: 'a', pendingPrefillTokens: 5_000 }, { clock, capacity }, () => {
      prefilledAtMs = clock.now()
    })
    clock.advance(499)
    assert.equal(prefilledAtMs, undefined)
    clock.advance(1)
    assert.equal(prefilledAtMs, 500)
  })

  it('learns the endpoint’s rate: a slower endpoint prefills later', () => {
    const clock = createManualClock()
    const capacity = createEndpointCapacity({ priorPrefillTokensPerSec: 10_000 }, { clock })
    // Slow: 2,000 tokens took a second, time after time.
    for (let i = 0; i < 50; i++) {
      capacity.observe('slow', {
        prefillAheadTokens: 0,
        prefillTokens: 2_000,
        ttftMs: 1_000,
        meanItlMs: undefined,
      })
    }
    const at: Record<string, number> = {}
    for (const id of ['slow', 'fresh']) {
      predictPrefillEnd(
        { endpointId: id, pendingPrefillTokens: 5_000 },
        { clock, capacity },
        () => {
          at[id] = clock.now()
        },
      )
    }
    clock.advance(10_000)
    assert.ok(at.slow! > at.fresh!, JSON.stringify(at))
  })

  it('does not call back once cleared', () => {
    const clock = createManualClock()
    const capacity = createEndpointCapacity({}, { clock })
    let called = false
    const timer = predictPrefillEnd(
      { endpointId: 'a', pendingPrefillTokens: 1_000 },
      { clock, capacity },
      () => {
        called = true
      },
    )
    timer.clear()
    clock.advance(60_000)
    assert.equal(called, false)
  })
})
