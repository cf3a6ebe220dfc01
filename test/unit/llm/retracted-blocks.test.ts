import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRetractedBlocks } from '../../../src/llm/retracted-blocks.ts'

describe('retracted blocks', () => {
  it('cut a match short at the first hidden block, on that endpoint only', () => {
    const blocks = createRetractedBlocks({ maxPerEndpoint: 8 })
    assert.ok(blocks.isEmpty)
    const before = blocks.version
    blocks.retract('e0', 30)
    assert.ok(blocks.version > before)
    assert.equal(blocks.visible('e0', [10, 20, 30, 40], 4), 2)
    assert.equal(blocks.visible('e0', [10, 20, 30, 40], 2), 2)
    assert.equal(blocks.visible('e1', [10, 20, 30, 40], 4), 4)
  })

  it('show blocks again once the prompt is placed there again, and only then move the version', () => {
    const blocks = createRetractedBlocks({ maxPerEndpoint: 8 })
    blocks.retract('e0', 30)
    const version = blocks.version
    blocks.restore('e0', [99])
    assert.equal(blocks.version, version)
    blocks.restore('e0', [10, 20, 30])
    assert.ok(blocks.version > version)
    assert.ok(blocks.isEmpty)
    assert.equal(blocks.visible('e0', [10, 20, 30, 40], 4), 4)
  })

  it('keep at most maxPerEndpoint, the oldest forgotten, and forget endpoints that left', () => {
    const blocks = createRetractedBlocks({ maxPerEndpoint: 2 })
    for (const hash of [1, 2, 3]) blocks.retract('e0', hash)
    assert.equal(blocks.visible('e0', [1], 1), 1)
    assert.equal(blocks.visible('e0', [3], 1), 0)
    blocks.retainOnly(new Set(['e1']))
    assert.ok(blocks.isEmpty)
  })
})
