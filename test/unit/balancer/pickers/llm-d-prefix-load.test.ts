import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import {
  createLlmdPrefixLoadPicker,
  llmdPrefixLoadOptionsSchema,
} from '../../../../src/balancer/pickers/llm-d-prefix-load.ts'
import type { EngineSnapshot } from '../../../../src/llm/engine-snapshot.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import {
  assertHonoursExclusions,
  countIds,
  engineMetrics,
  llmCtx,
  routeTo,
  text,
} from './llm-fixtures.ts'

function create(
  metrics: Readonly<Record<string, Partial<EngineSnapshot>>> = {},
  options: Record<string, unknown> = {},
): Picker {
  return createLlmdPrefixLoadPicker(llmdPrefixLoadOptionsSchema.parse(options), {
    clock: createManualClock(),
    random: createSeededRandom(5),
    engineMetrics: engineMetrics(metrics),
  })
}

describe('llm-d-prefix-load picker', () => {
  it('has the legacy blend’s defaults: 64-character blocks, 256 of them, weights 3/2/2', () => {
    assert.deepEqual(llmdPrefixLoadOptionsSchema.parse({}), {
      blockSizeChars: 64,
      maxPrefixBlocks: 256,
      lruCapacityPerServer: 31_250,
      autoTune: true,
      prefixWeight: 3,
      queueWeight: 2,
      kvCacheWeight: 2,
    })
  })

  it('weighs prefix 3 against queue 2 and KV 2', () => {
    const eligible = makeEndpoints([1, 1])
    const prompt = text('doc', 640)
    // e0 holds the prompt (3) but has the longer queue (0); e1 is cold with the short queue (2).
    // KV 0.9 on e0: 3 + 0 + 0.2 < 0 + 2 + 2. KV 0 on e0: 3 + 0 + 2 > 4.
    for (const [kvUsage, expected] of [
      [0.9, 'e1'],
      [0, 'e0'],
    ] as const) {
      const picker = create({ e0: { waiting: 10, kvUsage }, e1: { waiting: 0, kvUsage: 0 } })
      routeTo(picker, eligible, eligible[0]!, prompt)
      assert.equal(picker.pick(eligible, llmCtx(prompt))?.id, expected, `kv ${kvUsage}`)
    }
  })

  it('min-max normalises queues, so only their order and spread matter', () => {
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('doc', 640)
    // Queues 100 / 150 / 200 score 1 / 0.5 / 0 (× 2), KV is equal: cold e0 gets 2, warm e1 3 + 1.
    const picker = create({
      e0: { waiting: 100 },
      e1: { waiting: 150 },
      e2: { waiting: 200 },
    })
    routeTo(picker, eligible, eligible[1]!, prompt)
    assert.equal(picker.pick(eligible, llmCtx(prompt)), eligible[1])
  })

  it('leaves an endpoint without fresh metrics unscored by the load scorers', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create({ e1: { waiting: 50, kvUsage: 0.99 } })
    // e1's lone queue scores 1 (equal range) and its KV 0.01: 2.02 beats e0's 0.
    const counts = countIds(picker, eligible, 200, (i) => llmCtx(text(`q${i}`, 100)))
    assert.deepEqual([...counts], [['e1', 200]])
  })

  it('leaves the queue or KV gauge an endpoint’s page does not publish unscored, never idle', () => {
    const eligible = makeEndpoints([1, 1])
    // e0's page has no queue gauge: read as 0 its queue scored 1 and its 2.2 beat e1's 1.
    const noQueue = create({
      e0: { waiting: undefined, kvUsage: 0.9 },
      e1: { waiting: 10, kvUsage: 0.5 },
    })
    const noQueueCounts = countIds(noQueue, eligible, 50, (i) => llmCtx(text(`q${i}`, 100)))
    assert.deepEqual([...noQueueCounts], [['e1', 50]])
    // e0's page has no KV gauge: read as 0 its KV scored 1 and its 4 beat e1's 3.6.
    const noKv = create({
      e0: { waiting: 0, kvUsage: undefined },
      e1: { waiting: 0, kvUsage: 0.2 },
    })
    const noKvCounts = countIds(noKv, eligible, 50, (i) => llmCtx(text(`k${i}`, 100)))
    assert.deepEqual([...noKvCounts], [['e1', 50]])
  })

  it('scores the leading 64-character blocks held / the prompt’s blocks', () => {
    const eligible = makeEndpoints([1, 1])
    const shared = text('sys', 128)
    // e1's queue advantage is worth 2; half the prompt held on e0 is worth 1.5, all of it 3.
    const picker = create({ e0: { waiting: 1 }, e1: { waiting: 0 } })
    routeTo(picker, eligible, eligible[0]!, shared + text('a', 128))
    assert.equal(picker.pick(eligible, llmCtx(shared + text('a', 128))), eligible[0])
    assert.equal(picker.pick(eligible, llmCtx(shared + text('b', 128))), eligible[1])
  })

  it('gives a prompt shorter than one block no prefix score', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create({ e0: { waiting: 1 }, e1: { waiting: 0 } })
    routeTo(picker, eligible, eligible[0]!, text('short', 63))
    assert.equal(picker.pick(eligible, llmCtx(text('short', 63))), eligible[1])
  })

  it('counts only the first 256 blocks', () => {
    const eligible = makeEndpoints([1, 1])
    const shared = text('long', 256 * 64)
    const picker = create({ e0: { waiting: 1 }, e1: { waiting: 0 } })
    routeTo(picker, eligible, eligible[0]!, shared + text('a', 256 * 64))
    // Uncapped this would be half held (1.5 < 2); capped it is all of it (3 > 2).
    assert.equal(picker.pick(eligible, llmCtx(shared + text('b', 256 * 64))), eligible[0])
  })

  it('records the pick at once, before any response: the next identical prompt follows it', () => {
    const eligible = makeEndpoints([1, 1, 1, 1])
    const picker = create()
    const prompt = text('burst', 1_000)
    const first = picker.pick(eligible, llmCtx(prompt))
    for (let i = 0; i < 20; i++) assert.equal(picker.pick(eligible, llmCtx(prompt)), first)
  })

  it('scopes prefixes by model', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create({ e0: { waiting: 1 }, e1: { waiting: 0 } })
    const prompt = text('doc', 640)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama', servedModel: 'llama' })
    assert.equal(
      picker.pick(eligible, llmCtx(prompt, { model: 'qwen', servedModel: 'qwen' })),
      eligible[1],
    )
  })

  it('scopes prefixes by the served model: an alias matches its canonical name’s blocks', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create({ e0: { waiting: 1 }, e1: { waiting: 0 } })
    const served = 'meta-llama/Llama-3.1-8B-Instruct'
    const prompt = text('doc', 640)
    routeTo(picker, eligible, eligible[0]!, prompt, { model: 'llama-3.1-8b', servedModel: served })
    const viaAlias = llmCtx(prompt, { model: 'llama', servedModel: served })
    assert.equal(picker.pick(eligible, viaAlias), eligible[0])
  })

  it('sizes an endpoint’s block memory from its engine’s num_gpu_blocks (autoTune)', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create({
      e0: { waiting: 1, blockSize: 16, numGpuBlocks: 10 },
      e1: { waiting: 0 },
    })
    const first = text('first', 640)
    routeTo(picker, eligible, eligible[0]!, first)
    assert.equal(picker.pick(eligible, llmCtx(first)), eligible[0])
    routeTo(picker, eligible, eligible[0]!, text('second', 640))
    // Ten blocks fit: the second prompt pushed the first out of e0's LRU.
    assert.equal(picker.pick(eligible, llmCtx(first)), eligible[1])
  })

  it('keeps lruCapacityPerServer when autoTune is off', () => {
    const eligible = makeEndpoints([1, 1])
    const picker = create(
      { e0: { waiting: 1, blockSize: 16, numGpuBlocks: 10 }, e1: { waiting: 0 } },
      { autoTune: false },
    )
    const first = text('first', 640)
    routeTo(picker, eligible, eligible[0]!, first)
    routeTo(picker, eligible, eligible[0]!, text('second', 640))
    assert.equal(picker.pick(eligible, llmCtx(first)), eligible[0])
  })

  it('breaks ties at random', () => {
    const eligible = makeEndpoints([1, 1, 1, 1])
    const counts = countIds(create(), eligible, 4_000, (i) => llmCtx(text(`u${i}`, 200)))
    for (const endpoint of eligible) {
      assert.ok(Math.abs(counts.get(endpoint.id)! - 1_000) < 120, `${endpoint.id}`)
    }
  })

  it('never returns an excluded endpoint, and always returns one while any is left', () => {
    assertHonoursExclusions(create())
    assertHonoursExclusions(create({ e0: { waiting: 3 }, e3: { waiting: 1, kvUsage: 0.5 } }))
  })
})
