import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker, PickerDeps } from '../../../../src/balancer/picker.ts'
import {
  createSglangCacheAwarePicker,
  sglangCacheAwareOptionsSchema,
} from '../../../../src/balancer/pickers/sglang-cache-aware.ts'
import { createManualClock, type ManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { hold, makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { assertHonoursExclusions, countIds, llmCtx, routeTo, text } from './llm-fixtures.ts'

function create(
  options: Record<string, unknown> = {},
  clock: ManualClock = createManualClock(),
): Picker {
  const deps: PickerDeps = { clock, random: createSeededRandom(3) }
  return createSglangCacheAwarePicker(sglangCacheAwareOptionsSchema.parse(options), deps)
}

describe('sglang-cache-aware picker', () => {
  it('has SGLang Model Gateway’s current defaults', () => {
    assert.deepEqual(sglangCacheAwareOptionsSchema.parse({}), {
      cacheThreshold: 0.3,
      balanceAbsThreshold: 64,
      balanceRelThreshold: 1.5,
      evictionIntervalMs: 120_000,
      maxTreeChars: 2 ** 26,
    })
  })

  it('sends a prompt back to the endpoint its prefix was routed to, even when busier', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('system', 400)
    routeTo(picker, eligible, eligible[2]!, prompt)
    hold(eligible[2]!, 5)
    assert.equal(picker.pick(eligible, llmCtx(`${prompt} and a follow-up`)), eligible[2])
  })

  it('needs a match rate above cacheThreshold: 30 of 100 characters goes least-loaded', () => {
    const eligible = makeEndpoints([1, 1])
    const shared = text('shared', 40)
    for (const [sharedChars, expected] of [
      [30, 'e1'],
      [31, 'e0'],
    ] as const) {
      const picker = create()
      routeTo(picker, eligible, eligible[0]!, shared.slice(0, sharedChars) + text('x', 200))
      const leases = hold(eligible[0]!, 1)
      const prompt = shared.slice(0, sharedChars) + text('other', 100 - sharedChars)
      assert.equal(picker.pick(eligible, llmCtx(prompt))?.id, expected, `${sharedChars} shared`)
      for (const lease of leases) lease.end({ ok: true, latencyMs: 1 })
    }
  })

  it('goes to the least-loaded endpoint on a cache miss, not to the smallest tree (v1)', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    hold(eligible[0]!, 3)
    hold(eligible[2]!, 1)
    // e1 has the biggest tree and the least load: load wins.
    for (let i = 0; i < 5; i++) routeTo(picker, eligible, eligible[1]!, text(`p${i}`, 300))
    assert.equal(picker.pick(eligible, llmCtx(text('fresh', 300))), eligible[1])
  })

  it('switches to the least-loaded endpoint when max − min > 64 and max > 1.5 × min', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const prompt = text('hot', 500)
    routeTo(picker, eligible, eligible[0]!, prompt)
    hold(eligible[0]!, 65)
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[1], '65 − 0 > 64, 65 > 0')
  })

  it('stays cache-aware at exactly 64 apart, or when max is within 1.5 × min', () => {
    const prompt = text('hot', 500)
    for (const [hot, cold] of [
      [64, 0],
      [290, 200],
    ] as const) {
      const picker = create()
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[0]!, prompt)
      hold(eligible[0]!, hot)
      hold(eligible[1]!, cold)
      assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[0], `${hot} vs ${cold}`)
    }
  })

  it('still records the imbalanced-mode choice in the tree, so the prefix follows it', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const prompt = text('hot', 500)
    routeTo(picker, eligible, eligible[0]!, prompt)
    const leases = hold(eligible[0]!, 65)
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[1])
    for (const lease of leases) lease.end({ ok: true, latencyMs: 1 })
    hold(eligible[1]!, 2)
    // Both now hold the prompt; the most recently routed one wins despite its load.
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[1])
  })

  it('keeps one tree per model', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const prompt = text('shared', 400)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama', servedModel: 'llama' })
    hold(eligible[0]!, 1)
    assert.equal(
      picker.pick(eligible, llmCtx(prompt, { model: 'qwen', servedModel: 'qwen' })),
      eligible[1],
    )
    assert.equal(
      picker.pick(eligible, llmCtx(prompt, { model: 'llama', servedModel: 'llama' })),
      eligible[0],
    )
  })

  it('shares a tree between an alias and its canonical name (one served model)', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const served = 'meta-llama/Llama-3.1-8B-Instruct'
    const prompt = text('shared', 400)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama-3.1-8b', servedModel: served })
    hold(eligible[0]!, 1)
    const viaAlias = llmCtx(prompt, { model: 'llama', servedModel: served })
    assert.equal(picker.pick(eligible, viaAlias), eligible[0])
  })

  it('keeps trees for a bounded set of models: one-off names are forgotten, a model in use is not', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1])
    const model = (name: string) => ({ model: name, servedModel: name })
    const prompt = text('shared', 400)
    routeTo(picker, eligible, eligible[0]!, prompt, model('llama'))
    routeTo(picker, eligible, eligible[0]!, prompt, model('llama'))
    routeTo(picker, eligible, eligible[0]!, prompt, model('once'))
    for (let i = 0; i < 1000; i++)
      picker.pick(eligible, llmCtx(text('x', 100), model(`made-up-${i}`)))
    hold(eligible[0]!, 1)
    assert.equal(picker.pick(eligible, llmCtx(prompt, model('llama'))), eligible[0])
    // Forgotten: a miss, so the least-loaded endpoint.
    assert.equal(picker.pick(eligible, llmCtx(prompt, model('once'))), eligible[1])
  })

  it('matches only endpoints it may return: an excluded holder is skipped', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('retry', 400)
    routeTo(picker, eligible, eligible[0]!, prompt)
    routeTo(picker, eligible, eligible[1]!, prompt)
    hold(eligible[1]!, 2)
    assert.equal(picker.pick(eligible, llmCtx(prompt, {}, ['e0'])), eligible[1])
  })

  it('forgets the prefixes of an endpoint that left, and of an id that now names another server', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const left = text('left', 400)
    const moved = text('moved', 400)
    routeTo(picker, eligible, eligible[1]!, left)
    routeTo(picker, eligible, eligible[2]!, moved)
    hold(eligible[1]!, 2)
    hold(eligible[2]!, 2)
    picker.retain?.(new Set(['e0', 'e2']), new Set(['e2']))
    // e1 back under the same id, and e2's new server: neither holds what was routed there before.
    assert.equal(picker.pick(eligible, llmCtx(left)), eligible[0])
    assert.equal(picker.pick(eligible, llmCtx(moved)), eligible[0])
  })

  it('balances a request without an LLM body by in-flight count, ties at random', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1])
    hold(eligible[3]!, 1)
    const counts = countIds(picker, eligible, 3_000, () => ({ attempt: 0 }))
    assert.equal(counts.get('e3'), undefined)
    for (const id of ['e0', 'e1', 'e2']) {
      assert.ok(Math.abs(counts.get(id)! - 1_000) < 100, `${id}: ${counts.get(id)}`)
    }
  })

  it('runs the LRU eviction pass once evictionIntervalMs has passed', () => {
    const clock = createManualClock()
    const picker = create({ maxTreeChars: 150 }, clock)
    const eligible = makeEndpoints([1, 1])
    const older = text('older', 100)
    routeTo(picker, eligible, eligible[0]!, older)
    routeTo(picker, eligible, eligible[0]!, text('newer', 100))
    hold(eligible[0]!, 1)
    clock.advance(119_999)
    assert.equal(picker.pick(eligible, llmCtx(text('probe', 100))), eligible[1])
    // No pass yet: e0 still holds both (and this refresh leaves `newer` its least recent).
    assert.equal(picker.pick(eligible, llmCtx(older)), eligible[0])
    clock.advance(1)
    routeTo(picker, eligible, eligible[0]!, text('newest', 10))
    // The pass trimmed e0 to 150 characters by dropping its least recently used leaf.
    assert.equal(picker.pick(eligible, llmCtx(text('newer', 100))), eligible[1])
    assert.equal(picker.pick(eligible, llmCtx(older)), eligible[0])
  })

  it('never returns an excluded endpoint, and always returns one while any is left', () => {
    assertHonoursExclusions(create({ balanceAbsThreshold: 2 }))
    assertHonoursExclusions(create())
  })
})
