import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPinnedBlocks } from '../../../src/upstream/pinned-blocks.ts'

describe('pinned blocks', () => {
  it('counts the leading blocks some holder pins, stopping at the first it lacks', () => {
    const pinned = createPinnedBlocks()
    pinned.pin([1, 2, 3])
    assert.equal(pinned.leading([1, 2, 3, 4]), 3)
    assert.equal(pinned.leading([1, 9, 3]), 1)
    assert.equal(pinned.leading([9, 1]), 0)
  })

  it('keeps a block pinned while any holder keeps it, and forgets it after the last', () => {
    const pinned = createPinnedBlocks()
    pinned.pin([1, 2])
    pinned.pin([1, 2, 3])
    pinned.unpin([1, 2])
    assert.equal(pinned.leading([1, 2, 3]), 3)
    pinned.unpin([1, 2, 3])
    assert.equal(pinned.leading([1]), 0)
    assert.equal(pinned.size, 0)
    // Unpinning what is not pinned changes nothing.
    pinned.unpin([7])
    assert.equal(pinned.size, 0)
  })
})
