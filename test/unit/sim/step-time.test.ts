import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { A100_LLAMA3_8B, H100_LLAMA3_8B } from '../../../src/sim/profiles.ts'
import { stepTimeMs } from '../../../src/sim/step-time.ts'

const h100 = H100_LLAMA3_8B.stepTime
const a100 = A100_LLAMA3_8B.stepTime

function close(actual: number, expected: number, eps = 0.05): void {
  assert.ok(Math.abs(actual - expected) <= eps, `${actual} ≠ ${expected}`)
}

describe('sim step time', () => {
  it('is memory-bound for a single decode: about 7.4 ms on H100', () => {
    close(stepTimeMs(h100, { prefillTokens: 0, decodeSeqs: 1, decodeContextTokens: 100 }), 7.42)
  })

  it('gives about 14 ms for 64 decodes at 2k context on H100 (research note worked example)', () => {
    const ms = stepTimeMs(h100, {
      prefillTokens: 0,
      decodeSeqs: 64,
      decodeContextTokens: 64 * 2048,
    })
    assert.ok(ms > 13 && ms < 16, String(ms))
  })

  it('gives about 21 ms for 256 decodes at 1k context on H100', () => {
    const ms = stepTimeMs(h100, {
      prefillTokens: 0,
      decodeSeqs: 256,
      decodeContextTokens: 256 * 1024,
    })
    assert.ok(ms > 18 && ms < 24, String(ms))
  })

  it('is compute-bound for prefill: 33 µs a token on H100, 80 µs on A100', () => {
    close(stepTimeMs(h100, { prefillTokens: 1000, decodeSeqs: 0, decodeContextTokens: 0 }), 34)
    close(stepTimeMs(a100, { prefillTokens: 2048, decodeSeqs: 0, decodeContextTokens: 0 }), 164.84)
  })

  it('matches the Vidur check points quoted in the research note', () => {
    close(stepTimeMs(a100, { prefillTokens: 0, decodeSeqs: 128, decodeContextTokens: 0 }), 14.9)
    close(
      stepTimeMs(a100, { prefillTokens: 0, decodeSeqs: 256, decodeContextTokens: 0 }),
      18.2,
      0.1,
    )
    close(
      stepTimeMs(h100, { prefillTokens: 0, decodeSeqs: 512, decodeContextTokens: 0 }),
      12.3,
      0.1,
    )
  })
})
