import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createLruNumberSet } from '../../../src/llm/lru-number-set.ts'

describe('LRU number set', () => {
  test('evicts the least recently touched value when full', () => {
    const lru = createLruNumberSet(3)
    for (const v of [1, 2, 3]) lru.touch(v)
    lru.touch(1)
    lru.touch(4)
    assert.deepEqual(
      [1, 2, 3, 4].map((v) => lru.has(v)),
      [true, false, true, true],
    )
    assert.equal(lru.size, 3)
  })

  // The speed of this case (no tombstone scans) is measured by `npm run bench:hot-paths`.
  test('keeps exactly the most recently touched values under heavy refresh churn', () => {
    const capacity = 5_000
    const lru = createLruNumberSet(capacity)
    const last: number[] = []
    for (let round = 0; round < 10; round++)
      for (let v = 0; v < 6_000; v += 1) {
        const value = v * 7 + (round % 3)
        lru.touch(value)
        last.push(value)
      }
    const recent = new Set<number>()
    for (let i = last.length - 1; recent.size < capacity; i--) recent.add(last[i]!)
    assert.equal(lru.size, capacity)
    for (const value of recent) assert.ok(lru.has(value), `${value} evicted`)
    assert.ok(!lru.has(last.find((value) => !recent.has(value))!))
  })

  test('deletes a value, reusing its slot, and reports whether it was held', () => {
    const lru = createLruNumberSet(2)
    lru.touch(1)
    lru.touch(2)
    assert.equal(lru.delete(1), true)
    assert.equal(lru.delete(1), false)
    assert.equal(lru.size, 1)
    lru.touch(3) // room again: nothing evicted
    assert.ok(lru.has(2) && lru.has(3))
    lru.touch(4) // full: 2 is the least recent
    assert.ok(!lru.has(2) && lru.has(3) && lru.has(4))
  })

  test('matches a reference model on random operations', () => {
    const lru = createLruNumberSet(8)
    const reference: number[] = []
    let seed = 7
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      const v = seed % 20
      const at = reference.indexOf(v)
      if (at !== -1) reference.splice(at, 1)
      reference.push(v)
      if (reference.length > 8) reference.shift()
      lru.touch(v)
      for (let k = 0; k < 20; k++) assert.equal(lru.has(k), reference.includes(k))
    }
  })

  test('matches a reference model when resized up and down between touches', () => {
    const lru = createLruNumberSet(8)
    let capacity = 8
    const reference: number[] = []
    let seed = 11
    for (let i = 0; i < 6000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      if (seed % 50 === 0) {
        capacity = 1 + (seed % 23)
        lru.resize(capacity)
        while (reference.length > capacity) reference.shift()
      }
      const v = seed % 40
      const at = reference.indexOf(v)
      if (at !== -1) reference.splice(at, 1)
      reference.push(v)
      if (reference.length > capacity) reference.shift()
      lru.touch(v)
      assert.equal(lru.size, reference.length)
      assert.equal(lru.capacity, capacity)
      for (let k = 0; k < 40; k++) assert.equal(lru.has(k), reference.includes(k))
    }
  })

  test('says which values a touch adds, and tells of each value it drops for room, not of deletes', () => {
    const evicted: number[] = []
    const lru = createLruNumberSet(2, (value) => evicted.push(value))
    assert.equal(lru.touch(1), true)
    assert.equal(lru.touch(2), true)
    assert.equal(lru.touch(1), false)
    assert.equal(lru.touch(3), true)
    assert.deepEqual(evicted, [2])
    lru.delete(3)
    assert.deepEqual(evicted, [2])
    lru.touch(4)
    lru.resize(1)
    assert.deepEqual(evicted, [2, 1])
    const held: number[] = []
    lru.forEach((value) => {
      held.push(value)
    })
    assert.deepEqual(held, [4])
  })
})
