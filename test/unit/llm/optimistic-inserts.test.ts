import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createOptimisticInserts } from '../../../src/llm/optimistic-inserts.ts'
import { createPrefixBlockIndex } from '../../../src/llm/prefix-block-index.ts'

function setup(maxPerEndpoint = 16) {
  const index = createPrefixBlockIndex({ defaultCapacityBlocks: 1000 })
  const inserts = createOptimisticInserts(index, { maxPerEndpoint })
  const place = (endpointId: string, hashes: number[]) => {
    const matched = index.matchedBlocks(endpointId, hashes)
    index.add(endpointId, hashes)
    return inserts.claim(endpointId, hashes, matched)
  }
  return { index, inserts, place }
}

describe('optimistic inserts', () => {
  it('takes back a placement’s own insert: its first new block and the chain after it', () => {
    const { index, inserts, place } = setup()
    const claim = place('e0', [1, 2, 3])
    assert.ok(claim)
    inserts.release(claim)
    assert.equal(index.matchedBlocks('e0', [1, 2, 3]), 0)
  })

  it('keeps blocks while a placement that matched through them may still bring them', () => {
    const { index, inserts, place } = setup()
    const a = place('e0', [1, 2, 3])!
    const b = place('e0', [1, 2, 3, 4, 5])!
    inserts.release(a)
    assert.equal(index.matchedBlocks('e0', [1, 2, 3, 4, 5]), 5)
    inserts.release(b)
    assert.equal(index.matchedBlocks('e0', [1, 2, 3, 4, 5]), 0)
  })

  it('a later placement’s take-back removes only what it added', () => {
    const { index, inserts, place } = setup()
    place('e0', [1, 2, 3])
    const b = place('e0', [1, 2, 3, 4, 5])!
    inserts.release(b)
    assert.equal(index.matchedBlocks('e0', [1, 2, 3, 4, 5]), 3)
  })

  it('claims nothing for a placement that added nothing and matched no tracked insert', () => {
    const { index, inserts, place } = setup()
    index.add('e0', [1, 2, 3])
    assert.equal(place('e0', [1, 2, 3]), undefined)
    assert.equal(inserts.claim('e1', [], 0), undefined)
  })

  it('tracks a bounded number of inserts per endpoint: a forgotten one is still taken back', () => {
    const { index, inserts, place } = setup(2)
    const a = place('e0', [10])!
    place('e0', [20])
    place('e0', [30])
    // Forgotten from tracking, so a match through it no longer vouches for it.
    const b = place('e0', [10, 11])!
    inserts.release(a)
    assert.equal(index.matchedBlocks('e0', [10, 11]), 0)
    inserts.release(b)
  })

  it('leaves a block another placement added anew after the index had evicted it', () => {
    const index = createPrefixBlockIndex({ defaultCapacityBlocks: 2 })
    const inserts = createOptimisticInserts(index, { maxPerEndpoint: 16 })
    const place = (hashes: number[]) => {
      const matched = index.matchedBlocks('e0', hashes)
      index.add('e0', hashes)
      return inserts.claim('e0', hashes, matched)!
    }
    const a = place([1])
    place([7, 8]) // the LRU of two evicts block 1
    const b = place([1, 2])
    inserts.release(a)
    assert.equal(index.matchedBlocks('e0', [1, 2]), 2, 'b is still on its way')
    inserts.release(b)
    assert.equal(index.matchedBlocks('e0', [1, 2]), 0)
  })
})
