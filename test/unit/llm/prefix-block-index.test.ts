import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createPrefixBlockIndex,
  hashPromptBlocks,
  MAX_INDEX_BLOCKS,
} from '../../../src/llm/prefix-block-index.ts'

const chars = (seed: string, length: number): string => {
  let out = ''
  for (let i = 0; out.length < length; i++) out += `${seed}${i},`
  return out.slice(0, length)
}

describe('prefix block hashing', () => {
  it('cuts 64-character blocks and hashes a trailing partial block too', () => {
    assert.equal(hashPromptBlocks(chars('a', 128), 'm', 64, 256).length, 2)
    assert.equal(hashPromptBlocks(chars('a', 129), 'm', 64, 256).length, 3)
  })

  it('skips a prompt shorter than one block', () => {
    assert.deepEqual(hashPromptBlocks(chars('a', 63), 'm', 64, 256), [])
  })

  it('hashes only the first maxBlocks blocks', () => {
    assert.equal(hashPromptBlocks(chars('a', 64 * 300), 'm', 64, 256).length, 256)
  })

  it('chains blocks: equal prefixes give equal leading hashes, a changed block changes all after it', () => {
    const shared = chars('s', 128)
    const a = hashPromptBlocks(`${shared}${chars('x', 128)}`, 'm', 64, 256)
    const b = hashPromptBlocks(`${shared}${chars('y', 128)}`, 'm', 64, 256)
    assert.deepEqual(a.slice(0, 2), b.slice(0, 2))
    assert.notEqual(a[2], b[2])
    const changedFirst = hashPromptBlocks(`X${shared.slice(1)}${chars('x', 128)}`, 'm', 64, 256)
    for (let i = 0; i < 4; i++) assert.notEqual(changedFirst[i], a[i])
    // The same block text at another position is another block.
    const repeated = hashPromptBlocks(chars('r', 64).repeat(3), 'm', 64, 256)
    assert.equal(new Set(repeated).size, 3)
  })

  it('scopes hashes by model', () => {
    const text = chars('p', 256)
    const llama = hashPromptBlocks(text, 'llama', 64, 256)
    const qwen = hashPromptBlocks(text, 'qwen', 64, 256)
    for (let i = 0; i < llama.length; i++) assert.notEqual(llama[i], qwen[i])
  })

  it('gives safe integers, so Sets and Maps key them exactly', () => {
    for (const hash of hashPromptBlocks(chars('z', 64 * 50), 'm', 64, 256)) {
      assert.ok(Number.isSafeInteger(hash) && hash >= 0)
    }
  })
})

describe('prefix block index', () => {
  const blocks = (seed: string, count: number) =>
    hashPromptBlocks(chars(seed, 64 * count), 'm', 64, 1_000)

  it('holds no more than its hard bound of blocks per endpoint, whatever capacity it is given', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    const hashes = Array.from({ length: MAX_INDEX_BLOCKS + 1000 }, (_, i) => i + 1)
    index.add('e0', hashes, 2 ** 40)
    assert.equal(index.size('e0'), MAX_INDEX_BLOCKS)
  })

  it('counts the leading blocks an endpoint holds, stopping at the first it lacks', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    const held = blocks('a', 4)
    index.add('e0', held)
    assert.equal(index.matchedBlocks('e0', held), 4)
    assert.equal(index.matchedBlocks('e0', [...held.slice(0, 2), 42, held[3]!]), 2)
    assert.equal(index.matchedBlocks('e1', held), 0)
    assert.equal(index.matchedBlocks('e0', []), 0)
  })

  it('keeps each endpoint to its capacity, dropping the least recently added blocks', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 6 })
    const first = blocks('first', 4)
    const second = blocks('second', 4)
    index.add('e0', first)
    index.add('e0', second)
    assert.equal(index.size('e0'), 6)
    assert.equal(index.matchedBlocks('e0', first), 0, 'its first two blocks went first')
    assert.equal(index.matchedBlocks('e0', second), 4)
  })

  it('refreshes blocks that are added again', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 6 })
    const first = blocks('first', 3)
    index.add('e0', first)
    index.add('e0', blocks('second', 3))
    index.add('e0', first)
    index.add('e0', blocks('third', 3))
    assert.equal(index.matchedBlocks('e0', first), 3)
  })

  it('sizes an endpoint from the capacity given when it is first seen (GIE), by default', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    index.add('small', blocks('a', 10), 3)
    index.add('small', blocks('b', 10), 50)
    assert.equal(index.size('small'), 3)
    index.add('default', blocks('a', 10))
    assert.equal(index.size('default'), 10)
  })

  it('forgets endpoints that left the pool', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    index.add('e0', blocks('a', 2))
    index.add('e1', blocks('a', 2))
    index.retainOnly(new Set(['e1']))
    assert.equal(index.size('e0'), 0)
    assert.equal(index.size('e1'), 2)
  })

  it('changes an endpoint’s version on every add or purge of it, and no other endpoint’s', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    assert.equal(index.version('e0'), 0)
    index.add('e0', blocks('a', 2))
    const e0 = index.version('e0')
    assert.notEqual(e0, 0)
    index.add('e1', blocks('b', 2))
    assert.equal(index.version('e0'), e0, 'another endpoint’s add leaves it alone')
    index.add('e0', [])
    assert.equal(index.version('e0'), e0, 'adding nothing changes nothing')
    index.add('e0', blocks('a', 2))
    assert.notEqual(index.version('e0'), e0, 'a refresh may reorder its LRU')
    index.retainOnly(new Set(['e1']))
    assert.equal(index.version('e0'), 0)
  })

  it('resizes an endpoint when its capacity moves by more than a quarter, not for small noise', () => {
    const index = createPrefixBlockIndex({
      defaultCapacityBlocks: 100,
      resizeOnCapacityChange: true,
    })
    const first = blocks('first', 4)
    const second = blocks('second', 4)
    index.add('e0', first, 8)
    index.add('e0', second, 9) // within a quarter: still 8 blocks
    assert.equal(index.size('e0'), 8)
    index.add('e0', blocks('third', 4), 16) // the engine's real size arrived: room for all three
    assert.equal(index.size('e0'), 12)
    assert.equal(index.matchedBlocks('e0', first), 4)
    const before = index.version('e0')
    index.add('e0', blocks('third', 4), 4) // shrinks to the most recent four
    assert.equal(index.size('e0'), 4)
    assert.equal(index.matchedBlocks('e0', first), 0)
    assert.notEqual(index.version('e0'), before)
  })
})

describe('prefix block index: removing a block', () => {
  it("cuts the match at the removed block, moves only that endpoint's version, and add restores it", () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 100 })
    const hashes = hashPromptBlocks(chars('p', 64 * 4), 'm', 64, 100)
    index.add('e0', hashes)
    index.add('e1', hashes)
    const [v0, v1] = [index.version('e0'), index.version('e1')]
    index.remove('e0', hashes[2]!)
    assert.equal(index.matchedBlocks('e0', hashes), 2)
    assert.equal(index.matchedBlocks('e1', hashes), 4)
    assert.notEqual(index.version('e0'), v0)
    assert.equal(index.version('e1'), v1)
    const v = index.version('e0')
    index.remove('e0', hashes[2]!) // not held: nothing changes
    assert.equal(index.version('e0'), v)
    index.add('e0', hashes)
    assert.equal(index.matchedBlocks('e0', hashes), 4)
  })
})

describe('matching a prompt on many endpoints at once', () => {
  // Small pools of endpoints and block values, so prompts share prefixes, LRUs evict and every
  // endpoint often holds the same blocks: the cases the count of holders short-cuts.
  const endpointArb = fc.constantFrom('e0', 'e1', 'e2', 'e3')
  const promptArb = fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 8 })
  const opArb = fc.oneof(
    fc.record({
      kind: fc.constant('add' as const),
      endpoint: endpointArb,
      prompt: promptArb,
      capacity: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
    }),
    fc.record({
      kind: fc.constant('remove' as const),
      endpoint: endpointArb,
      block: fc.integer({ min: 0, max: 12 }),
    }),
    fc.record({
      kind: fc.constant('retain' as const),
      keep: fc.subarray(['e0', 'e1', 'e2', 'e3']),
    }),
  )
  // A prompt's blocks as distinct chained values, as hashes are: block i stands for the prefix.
  const chained = (prompt: readonly number[]) => {
    const out: number[] = []
    let parent = 0
    for (const block of prompt) {
      parent = parent * 13 + block + 1
      out.push(parent)
    }
    return out
  }

  it('gives each endpoint the match walking it alone gives, through adds, evictions, removals and purges', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), promptArb, (ops, asked) => {
        for (const evictTailFirst of [false, true]) {
          const index = createPrefixBlockIndex({
            defaultCapacityBlocks: 6,
            evictTailFirst,
            resizeOnCapacityChange: true,
          })
          const check = () => {
            const ids = ['e0', 'e1', 'e2', 'e3', 'absent']
            const hashes = chained(asked)
            const out: number[] = []
            index.matchedBlocksEach(ids, hashes, out)
            assert.deepEqual(
              out,
              ids.map((id) => index.matchedBlocks(id, hashes)),
            )
          }
          for (const op of ops) {
            if (op.kind === 'add') index.add(op.endpoint, chained(op.prompt), op.capacity)
            else if (op.kind === 'remove') index.remove(op.endpoint, op.block)
            else index.retainOnly(new Set(op.keep))
            check()
          }
        }
      }),
      { numRuns: 300 },
    )
  })
})
