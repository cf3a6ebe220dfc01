import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createKvBlockPool } from '../../../src/sim/kv-block-pool.ts'

describe('sim kv block pool', () => {
  it('reserves the null block, so one block fewer than num_gpu_blocks is usable', () => {
    const pool = createKvBlockPool(11)
    assert.equal(pool.numUsableBlocks, 10)
    assert.equal(pool.numFreeBlocks, 10)
    assert.equal(pool.allocate(11), undefined)
    assert.equal(pool.allocate(10)?.length, 10)
    assert.equal(pool.usage(), 1)
  })

  it('counts cached blocks that no one holds as free and finds them again', () => {
    const pool = createKvBlockPool(11)
    const ids = pool.allocate(4)!
    ids.forEach((id, i) => {
      pool.cacheBlock(id, 100 + i)
    })
    assert.equal(pool.usage(), 0.4)
    pool.free([...ids].reverse())
    assert.equal(pool.usage(), 0)
    assert.equal(pool.numCachedBlocks, 4)
    assert.deepEqual(
      pool.findCachedPrefix((i) => 100 + i, 10),
      ids,
    )
  })

  it('stops a prefix lookup at the first missing hash and at the cap', () => {
    const pool = createKvBlockPool(11)
    const ids = pool.allocate(3)!
    pool.cacheBlock(ids[0]!, 1)
    pool.cacheBlock(ids[2]!, 3)
    assert.deepEqual(
      pool.findCachedPrefix((i) => i + 1, 10),
      [ids[0]],
    )
    pool.cacheBlock(ids[1]!, 2)
    assert.equal(pool.findCachedPrefix((i) => i + 1, 2).length, 2)
  })

  it('reuses free cached blocks least recently freed first, evicting their hashes', () => {
    const pool = createKvBlockPool(5)
    const [a, b, c, d] = pool.allocate(4)!
    pool.cacheBlock(a!, 1)
    pool.cacheBlock(b!, 2)
    pool.free([b!, a!])
    pool.free([c!, d!])
    const [first] = pool.allocate(1)!
    assert.equal(first, b)
    assert.equal(pool.findCachedPrefix((i) => [2, 1][i]!, 2).length, 0)
    assert.equal(pool.findCachedPrefix(() => 1, 1).length, 1)
  })

  it('takes a hit block out of the free queue when touched', () => {
    const pool = createKvBlockPool(5)
    const [a] = pool.allocate(1)!
    pool.cacheBlock(a!, 7)
    pool.free([a!])
    assert.equal(pool.isFree(a!), true)
    pool.touch([a!])
    assert.equal(pool.isFree(a!), false)
    assert.equal(pool.numFreeBlocks, 3)
    assert.equal(pool.usage(), 0.25)
  })
})
