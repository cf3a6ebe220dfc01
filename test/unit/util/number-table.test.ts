import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { createNumberTable } from '../../../src/util/number-table.ts'

type Op = {
  readonly kind: 'set' | 'delete' | 'get' | 'add'
  readonly key: number
  readonly value: number
  readonly delta: number
}

// A few keys from a small pool make sets, deletes and probe runs collide often; the rest are the
// 53-bit block hashes the prefix index keys by, and numbers of every other shape.
const keyArb = fc.oneof(
  fc.integer({ min: 0, max: 40 }),
  fc.integer({ min: 0, max: 2 ** 53 - 1 }),
  fc.double({ noNaN: true }),
  fc.constantFrom(0, -0, 2 ** 32, -(2 ** 32), Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY),
)
const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('set', 'set', 'delete', 'get', 'add', 'add'),
  key: keyArb,
  value: fc.integer({ min: 0, max: 2 ** 30 }),
  delta: fc.integer({ min: -3, max: 3 }),
})

describe('number table', () => {
  test('agrees with a Map under any sequence of sets, deletes, gets and counted adds', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const table = createNumberTable()
        const model = new Map<number, number>()
        for (const { kind, key, value, delta } of ops) {
          if (kind === 'add') {
            // A count: what the deltas add up to, gone at 0 or below.
            const sum = (model.get(key) ?? 0) + delta
            if (sum <= 0) model.delete(key)
            else model.set(key, sum)
            assert.equal(table.add(key, delta), sum)
          } else if (kind === 'set') {
            table.set(key, value)
            model.set(key, value)
          } else if (kind === 'delete') {
            assert.equal(table.delete(key), model.delete(key))
          } else {
            assert.equal(table.get(key), model.get(key) ?? -1)
          }
          assert.equal(table.size, model.size)
        }
        for (const [key, value] of model) assert.equal(table.get(key), value)
      }),
      { numRuns: 300 },
    )
  })

  test('finds every key after growing past its first size and shrinking back', () => {
    const table = createNumberTable()
    const keys = Array.from({ length: 20_000 }, (_, i) => i * 2 ** 21 + 7)
    for (const [i, key] of keys.entries()) table.set(key, i)
    assert.equal(table.size, keys.length)
    for (const [i, key] of keys.entries()) assert.equal(table.get(key), i)
    for (const key of keys.slice(0, 19_990)) assert.equal(table.delete(key), true)
    assert.equal(table.size, 10)
    for (let i = 19_990; i < keys.length; i++) assert.equal(table.get(keys[i]!), i)
    assert.equal(table.get(keys[0]!), -1)
  })

  test('treats -0 and 0 as one key, as a Map does', () => {
    const table = createNumberTable()
    table.set(-0, 5)
    assert.equal(table.get(0), 5)
    assert.equal(table.delete(0), true)
    assert.equal(table.size, 0)
  })
})
