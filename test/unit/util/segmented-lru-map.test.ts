import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSegmentedLruMap } from '../../../src/util/segmented-lru-map.ts'

describe('segmented LRU map', () => {
  it('holds at most maxEntries keys however many are used', () => {
    const map = createSegmentedLruMap<number>({ maxEntries: 8 })
    for (let i = 0; i < 1000; i++) map.use(`k${i}`, () => i)
    for (let i = 0; i < 1000; i++) map.use(`k${i % 20}`, () => i)
    assert.ok(map.size <= 8, `${map.size}`)
    assert.ok([...map.values()].length === map.size)
  })

  it('a flood of keys used once never evicts a key used twice', () => {
    const map = createSegmentedLruMap<string>({ maxEntries: 8, probationEntries: 2 })
    map.use('steady', () => 'kept')
    map.use('steady', () => 'replaced')
    for (let i = 0; i < 1000; i++) map.use(`once${i}`, () => 'once')
    assert.equal(map.peek('steady'), 'kept')
    assert.equal(map.peek('once0'), undefined)
    assert.equal(map.peek('once999'), 'once')
  })

  it('a full protected segment demotes its least recent key, which one more use brings back', () => {
    const map = createSegmentedLruMap<string>({ maxEntries: 3, probationEntries: 1 })
    for (const key of ['a', 'b', 'c']) {
      map.use(key, () => key)
      map.use(key, () => 'replaced')
    }
    assert.equal(map.peek('a'), 'a', 'protecting c demoted a to probation')
    assert.equal(
      map.use('a', () => 'replaced'),
      'a',
      'one more use protects it again',
    )
    assert.equal(map.peek('b'), 'b', 'which demoted b')
    map.use('d', () => 'd')
    assert.equal(map.peek('b'), undefined, 'a new key pushed b out of probation')
    assert.deepEqual([...map.values()].sort(), ['a', 'c', 'd'])
  })

  it('peek neither creates nor counts a use', () => {
    const map = createSegmentedLruMap<number>({ maxEntries: 4, probationEntries: 1 })
    assert.equal(map.peek('a'), undefined)
    assert.equal(map.size, 0)
    map.use('a', () => 1)
    map.peek('a')
    map.use('b', () => 2)
    assert.equal(map.peek('a'), undefined, 'still on probation, so b pushed it out')
  })
})
