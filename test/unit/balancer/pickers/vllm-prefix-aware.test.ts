import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import {
  createVllmPrefixAwarePicker,
  vllmPrefixAwareOptionsSchema,
} from '../../../../src/balancer/pickers/vllm-prefix-aware.ts'
import { createManualClock, type ManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { hold, makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { assertHonoursExclusions, countIds, llmCtx, routeTo, text } from './llm-fixtures.ts'

const create = (
  options: Record<string, unknown> = {},
  clock: ManualClock = createManualClock(),
): Picker =>
  createVllmPrefixAwarePicker(vllmPrefixAwareOptionsSchema.parse(options), {
    clock,
    random: createSeededRandom(9),
  })

describe('vllm-prefix-aware picker', () => {
  it('has production-stack’s defaults: 128-character chunks, no minimum match, 60 s QPS window', () => {
    assert.deepEqual(vllmPrefixAwareOptionsSchema.parse({}), {
      chunkSizeChars: 128,
      prefixMinMatchChars: 0,
      requestStatsWindowMs: 60_000,
      maxTrieNodes: 262_144,
    })
  })

  it('sends a prompt to the endpoint holding its longest prefix, whatever the load', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prefix = text('sys', 384)
    routeTo(picker, eligible, eligible[0]!, prefix + text('a', 200))
    routeTo(picker, eligible, eligible[1]!, prefix.slice(0, 128) + text('b', 200))
    hold(eligible[0]!, 50)
    const counts = countIds(picker, eligible, 50, (i) => llmCtx(prefix + text(`q${i}`, 50)))
    assert.deepEqual([...counts], [['e0', 50]])
  })

  it('picks at random among the endpoints holding the longest match', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('sys', 512)
    routeTo(picker, eligible, eligible[0]!, prompt)
    routeTo(picker, eligible, eligible[1]!, prompt)
    const counts = countIds(picker, eligible, 2_000, () => llmCtx(prompt))
    assert.equal(counts.get('e2'), undefined)
    assert.ok(Math.abs(counts.get('e0')! - 1_000) < 100, `e0: ${counts.get('e0')}`)
  })

  it('matches whole 128-character chunks: a prompt sharing 127 characters matches nothing', () => {
    const eligible = makeEndpoints([1, 1])
    const shared = text('shared', 128)
    for (const [sharedChars, expected] of [
      [128, 'e0'],
      [127, 'e1'],
    ] as const) {
      // A minimum of 1 character sends a match of nothing to the lowest QPS: e1, never picked.
      const picker = create({ prefixMinMatchChars: 1 })
      routeTo(picker, eligible, eligible[0]!, shared.slice(0, sharedChars) + text('a', 300))
      const prompt = shared.slice(0, sharedChars) + text('b', 300)
      assert.equal(picker.pick(eligible, llmCtx(prompt))?.id, expected, `${sharedChars} shared`)
    }
  })

  it('below prefixMinMatchChars goes to the endpoint with the lowest router-side QPS', () => {
    const picker = create({ prefixMinMatchChars: 256 })
    const eligible = makeEndpoints([1, 1, 1])
    const shared = text('shared', 128)
    routeTo(picker, eligible, eligible[0]!, shared + text('a', 300))
    routeTo(picker, eligible, eligible[1]!, text('other', 300))
    routeTo(picker, eligible, eligible[1]!, text('more', 300))
    // A 128-character match is under 256: e2, never picked, has the lowest QPS.
    assert.equal(picker.pick(eligible, llmCtx(shared + text('b', 300))), eligible[2])
    // The prompt was still recorded for e2, so a 256-character match now counts.
    assert.equal(picker.pick(eligible, llmCtx(shared + text('b', 300))), eligible[2])
  })

  it('measures QPS over the sliding window only', () => {
    const clock = createManualClock()
    const picker = create({ prefixMinMatchChars: 1_000_000 }, clock)
    const eligible = makeEndpoints([1, 1])
    for (let i = 0; i < 5; i++) routeTo(picker, eligible, eligible[0]!, text(`a${i}`, 100))
    clock.advance(59_000)
    routeTo(picker, eligible, eligible[1]!, text('b', 100))
    assert.equal(picker.pick(eligible, llmCtx(text('c', 100))), eligible[1], '5 vs 1 in window')
    clock.advance(2_000)
    // e0's five requests have left the 60 s window; e1 now has two.
    assert.equal(picker.pick(eligible, llmCtx(text('d', 100))), eligible[0])
  })

  it('spreads requests without an LLM body by lowest QPS', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const counts = countIds(picker, eligible, 300, () => ({ attempt: 0 }))
    assert.deepEqual([...counts].sort(), [
      ['e0', 100],
      ['e1', 100],
      ['e2', 100],
    ])
  })

  it('keeps one trie per model', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('sys', 512)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama', servedModel: 'llama' })
    const counts = countIds(picker, eligible, 300, (i) =>
      llmCtx(text(`fresh${i}`, 10) + prompt, { model: 'qwen', servedModel: 'qwen' }),
    )
    assert.equal(counts.size, 3, 'qwen prompts are not pulled to llama’s endpoint')
    assert.equal(
      picker.pick(eligible, llmCtx(prompt, { model: 'llama', servedModel: 'llama' })),
      eligible[0],
    )
  })

  it('shares a trie between an alias and its canonical name (one served model)', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1])
    const served = 'meta-llama/Llama-3.1-8B-Instruct'
    const prompts = eligible.map((_, k) => text(`conversation${k}`, 1024))
    eligible.forEach((endpoint, k) => {
      routeTo(picker, eligible, endpoint, prompts[k]!, {
        model: 'llama-3.1-8b',
        servedModel: served,
      })
    })
    eligible.forEach((endpoint, k) => {
      const viaAlias = llmCtx(prompts[k]! + text('turn 2', 200), {
        model: 'llama',
        servedModel: served,
      })
      assert.equal(picker.pick(eligible, viaAlias), endpoint)
    })
  })

  it('keeps tries for a bounded set of models: one-off names are forgotten, a model in use is not', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1])
    const model = (name: string) => ({ model: name, servedModel: name })
    const prompts = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => text(`conversation${k}`, 1024))
    routeTo(picker, eligible, eligible[3]!, prompts[0]!, model('llama'))
    routeTo(picker, eligible, eligible[3]!, prompts[0]!, model('llama'))
    prompts.forEach((prompt, k) => {
      routeTo(picker, eligible, eligible[3]!, prompt, model(`once${k}`))
    })
    for (let i = 0; i < 1000; i++) {
      picker.pick(eligible, llmCtx(text('x', 256), model(`made-up-${i}`)))
    }
    assert.equal(picker.pick(eligible, llmCtx(prompts[0]!, model('llama'))), eligible[3])
    // Forgotten, each goes to a random endpoint: all eight back on e3 would be a 1-in-65,536 draw.
    const back = prompts.filter(
      (p, k) => picker.pick(eligible, llmCtx(p, model(`once${k}`))) === eligible[3],
    )
    assert.ok(back.length < prompts.length, `${back.length} of ${prompts.length} remembered`)
  })

  it('forgets the least recently used prefixes beyond maxTrieNodes', () => {
    const picker = create({ maxTrieNodes: 8, prefixMinMatchChars: 1 })
    const eligible = makeEndpoints([1, 1, 1, 1])
    const old = text('old', 512) // four chunks, four nodes
    routeTo(picker, eligible, eligible[0]!, old)
    routeTo(picker, eligible, eligible[1]!, text('newer', 512))
    routeTo(picker, eligible, eligible[2]!, text('newest', 512))
    // The old prompt's nodes were evicted, so it matches nothing: lowest QPS, e3.
    assert.equal(picker.pick(eligible, llmCtx(old)), eligible[3])
  })

  it('never returns an excluded endpoint, and always returns one while any is left', () => {
    assertHonoursExclusions(create())
    assertHonoursExclusions(create({ prefixMinMatchChars: 200, maxTrieNodes: 50 }))
  })
})
