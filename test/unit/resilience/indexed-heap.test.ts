import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createIndexedHeap, NOT_IN_HEAP } from '../../../src/resilience/indexed-heap.ts'

interface Item {
  key: number
  readonly id: number
  slot: number
}

const newHeap = () =>
  createIndexedHeap<Item>((a, b) => a.key < b.key || (a.key === b.key && a.id < b.id), {
    get: (item) => item.slot,
    set: (item, index) => {
      item.slot = index
    },
  })

const sortedKeys = (items: readonly Item[]) =>
  [...items].sort((a, b) => a.key - b.key || a.id - b.id).map((item) => item.id)

describe('indexed heap', () => {
  it('pops in key order and marks popped items as out of the heap', () => {
    const heap = newHeap()
    const items = [5, 1, 4, 2, 3].map((key, id) => ({ key, id, slot: NOT_IN_HEAP }))
    for (const item of items) heap.push(item)
    const popped: number[] = []
    for (let item = heap.pop(); item; item = heap.pop()) popped.push(item.key)
    assert.deepEqual(popped, [1, 2, 3, 4, 5])
    assert.ok(items.every((item) => item.slot === NOT_IN_HEAP && !heap.has(item)))
  })

  it('keeps order through deletes, re-keys and lazy ordered iteration', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 20 }), fc.nat(3), fc.integer({ min: 0, max: 20 })),
          {
            maxLength: 60,
          },
        ),
        (ops) => {
          const heap = newHeap()
          const live: Item[] = []
          ops.forEach(([key, op, other], id) => {
            if (op === 0 && live.length > 0) {
              const victim = live.splice(other % live.length, 1)[0]!
              assert.equal(heap.delete(victim), true)
              assert.equal(heap.delete(victim), false)
            } else if (op === 1 && live.length > 0) {
              const moved = live[other % live.length]!
              moved.key = key
              heap.update(moved)
            } else {
              const item = { key, id, slot: NOT_IN_HEAP }
              live.push(item)
              heap.push(item)
            }
            assert.equal(heap.size, live.length)
            assert.deepEqual(
              [...heap.ordered()].map((item) => item.id),
              sortedKeys(live),
            )
          })
        },
      ),
    )
  })

  it('lets an ordered iteration stop early without disturbing the heap', () => {
    const heap = newHeap()
    for (let id = 0; id < 100; id++) heap.push({ key: 100 - id, id, slot: NOT_IN_HEAP })
    const firstThree: number[] = []
    for (const item of heap.ordered()) {
      firstThree.push(item.key)
      if (firstThree.length === 3) break
    }
    assert.deepEqual(firstThree, [1, 2, 3])
    assert.equal(heap.size, 100)
    assert.equal(heap.peek()?.key, 1)
  })
})
