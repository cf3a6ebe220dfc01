import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPinnedBlocks } from '../../../src/upstream/pinned-blocks.ts'

describe('pinned blocks', () => {
  it('counts the leading blocks some holder pins, stopping at the first it lacks', () => {
    const pinned = createPinnedBlocks()
    pinned.pin([1, 2, 3], 16)
    assert.equal(pinned.leading([1, 2, 3, 4]), 3)
    assert.equal(pinned.leading([1, 9, 3]), 1)
    assert.equal(pinned.leading([9, 1]), 0)
  })

  it('charges a block when its first holder pins it and releases it after its last, whoever that is', () => {
    const pinned = createPinnedBlocks()
    assert.equal(pinned.pin([1, 2], 16), 32)
    assert.equal(pinned.pin([1, 2, 3], 16), 16, 'only block 3 is new')
    // The first holder ends: the second still holds 1 and 2.
    assert.equal(pinned.unpin([1, 2]), 0)
    assert.equal(pinned.leading([1, 2, 3]), 3)
    assert.equal(pinned.unpin([1, 2, 3]), 48)
    assert.equal(pinned.leading([1]) + pinned.leading([2]) + pinned.leading([3]), 0, 'none is held')
    // Unpinning what is not pinned changes nothing.
    assert.equal(pinned.unpin([7]), 0)
  })
})
