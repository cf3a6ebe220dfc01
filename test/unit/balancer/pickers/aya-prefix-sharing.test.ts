import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import { createDesPrefixHub } from '../../../../src/bench/des-prefix-hub.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { candidatesOf, createAya, llmCtx, text } from './llm-fixtures.ts'

/** Two `aya` routers over the same three endpoints, sharing announcements 1 ms apart. */
function twoRouters(options: Record<string, unknown> = {}) {
  const clock = createManualClock()
  const hub = createDesPrefixHub({ delayMs: 1 }, { clock })
  const eligible = makeEndpoints([1, 1, 1])
  const ids = new Set(eligible.map((endpoint) => endpoint.id))
  const router = (seed: number): Picker => {
    const picker = createAya(
      { pacing: false, ...options },
      { clock, prefixPeers: hub.join() },
      seed,
    )
    picker.retain!(ids)
    return picker
  }
  return { clock, eligible, a: router(1), b: router(2) }
}

const hitsOn = (candidates: ReturnType<typeof candidatesOf>, id: string) =>
  candidates.find((candidate) => candidate.endpoint === id)!.hitTokens

describe('aya routers sharing their prefix index', () => {
  it('see the prompts the other router placed once its announcement arrives', () => {
    const { clock, eligible, a, b } = twoRouters()
    const conversation = text('conversation', 6000)
    const placed = a.pick(eligible, llmCtx(conversation))!
    clock.advance(1)
    const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
    assert.ok(hitsOn(next, placed.id) > 1400, `hits: ${hitsOn(next, placed.id)}`)
    for (const endpoint of eligible) {
      if (endpoint !== placed) assert.equal(hitsOn(next, endpoint.id), 0)
    }
  })

  it('do not see it before the announcement has had time to arrive', () => {
    const { eligible, a, b } = twoRouters()
    const conversation = text('conversation', 6000)
    const placed = a.pick(eligible, llmCtx(conversation))!
    const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
    assert.equal(hitsOn(next, placed.id), 0)
  })

  it('forget it again when the placing router takes its insert back', () => {
    const { clock, eligible, a, b } = twoRouters()
    const conversation = text('conversation', 6000)
    const ctx = llmCtx(conversation)
    const placed = a.pick(eligible, ctx)!
    a.unsent!(placed, ctx)
    clock.advance(1)
    const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
    assert.equal(hitsOn(next, placed.id), 0)
  })

  it('ignore announcements about endpoints they do not route to', () => {
    const { clock, eligible, a, b } = twoRouters()
    b.retain!(new Set(eligible.slice(1).map((endpoint) => endpoint.id)))
    const conversation = text('conversation', 6000)
    const ctx = llmCtx(
      conversation,
      {},
      eligible.slice(1).map((endpoint) => endpoint.id),
    )
    assert.equal(a.pick(eligible, ctx), eligible[0])
    clock.advance(1)
    b.retain!(new Set(eligible.map((endpoint) => endpoint.id)))
    const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
    assert.equal(hitsOn(next, eligible[0]!.id), 0)
  })

  it('keep to themselves with sharePrefixIndex off, and after close', () => {
    for (const setup of ['option off', 'closed'] as const) {
      const { clock, eligible, a, b } = twoRouters(
        setup === 'option off' ? { sharePrefixIndex: false } : {},
      )
      if (setup === 'closed') b.close!()
      const conversation = text('conversation', 6000)
      const placed = a.pick(eligible, llmCtx(conversation))!
      clock.advance(1)
      const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
      assert.equal(hitsOn(next, placed.id), 0, setup)
    }
  })
})
