import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import { createDesPubSub } from '../../../../src/bench/des-pubsub.ts'
import { createPrefixPeers } from '../../../../src/llm/prefix-peers.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { candidatesOf, createAya, llmCtx, text } from './llm-fixtures.ts'

/** Two `aya` routers over the same three endpoints (b with its own options, if given), sharing announcements 1 ms apart. */
function twoRouters(
  options: Record<string, unknown> = {},
  optionsOfB: Record<string, unknown> = options,
) {
  const clock = createManualClock()
  const hub = createDesPubSub({ delayMs: 1 }, { clock })
  const eligible = makeEndpoints([1, 1, 1])
  const ids = new Set(eligible.map((endpoint) => endpoint.id))
  const router = (seed: number, own: Record<string, unknown>): Picker => {
    const picker = createAya(
      { pacing: false, ...own },
      { clock, prefixPeers: createPrefixPeers({ channel: 'prefix:llm' }, { state: hub }) },
      seed,
    )
    picker.retain!(ids)
    return picker
  }
  return { clock, eligible, a: router(1, options), b: router(2, optionsOfB) }
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

  it('hear an endpoint whose KV holds less than one block, which the index sizes at one', () => {
    // 8 KV tokens of 4 characters are half a 64-character block: the index keeps one block.
    const { clock, eligible, a, b } = twoRouters({ defaultKvCapacityTokens: 8 })
    const conversation = text('conversation', 6000)
    const placed = a.pick(eligible, llmCtx(conversation))!
    clock.advance(1)
    const next = candidatesOf(b, eligible, llmCtx(conversation + text('turn 2', 400)))
    assert.ok(hitsOn(next, placed.id) > 0, `hits: ${hitsOn(next, placed.id)}`)
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
  it('keep no false hit when both routers that sent a prompt to one endpoint give up on it', () => {
    const { clock, eligible, a, b } = twoRouters()
    const onlyFirst = eligible.slice(1).map((endpoint) => endpoint.id)
    const conversation = text('conversation', 6000)
    const [ofA, ofB] = [llmCtx(conversation, {}, onlyFirst), llmCtx(conversation, {}, onlyFirst)]
    assert.equal(a.pick(eligible, ofA), eligible[0])
    clock.advance(1)
    // b matches through a's announcement, and sends it there too.
    assert.equal(b.pick(eligible, ofB), eligible[0])
    clock.advance(1)
    a.unsent!(eligible[0]!, ofA)
    b.unsent!(eligible[0]!, ofB)
    clock.advance(1)
    for (const router of [a, b]) {
      const next = candidatesOf(
        router,
        eligible,
        llmCtx(conversation + text('t', 400), {}, onlyFirst),
      )
      assert.equal(hitsOn(next, eligible[0]!.id), 0)
    }
  })

  it("keep a block this router's placement still brings when another router takes its own back", () => {
    const { clock, eligible, a, b } = twoRouters()
    const onlyFirst = eligible.slice(1).map((endpoint) => endpoint.id)
    const conversation = text('conversation', 6000)
    // Both routers send the same prompt to one endpoint before either hears of the other's.
    assert.equal(a.pick(eligible, llmCtx(conversation, {}, onlyFirst)), eligible[0])
    const ctx = llmCtx(conversation, {}, onlyFirst)
    assert.equal(b.pick(eligible, ctx), eligible[0])
    b.unsent!(eligible[0]!, ctx)
    clock.advance(1)
    const next = candidatesOf(
      a,
      eligible,
      llmCtx(conversation + text('turn 2', 400), {}, onlyFirst),
    )
    assert.ok(hitsOn(next, eligible[0]!.id) > 1400, `hits: ${hitsOn(next, eligible[0]!.id)}`)
  })

  it("never resize this router's index to the size another router announces", () => {
    // b sizes its index for an engine of 1,024 KV tokens; a for the default 262,144.
    const { clock, eligible, a, b } = twoRouters({}, { defaultKvCapacityTokens: 1024 })
    const onlyFirst = eligible.slice(1).map((endpoint) => endpoint.id)
    const document = text('document', 6000)
    assert.equal(a.pick(eligible, llmCtx(document, {}, onlyFirst)), eligible[0])
    clock.advance(1)
    b.pick(eligible, llmCtx(text('other', 2000), {}, onlyFirst))
    clock.advance(1)
    const next = candidatesOf(a, eligible, llmCtx(document + text('turn 2', 400), {}, onlyFirst))
    assert.ok(hitsOn(next, eligible[0]!.id) > 1400, `hits: ${hitsOn(next, eligible[0]!.id)}`)
  })
})
