import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rendezvousPick } from '../../../src/util/rendezvous.ts'

const pick = (key: number, ids: readonly string[]) =>
  rendezvousPick(key, ids.length, (i) => ids[i]!)

describe('rendezvous pick', () => {
  const ids = ['a', 'b', 'c', 'd']

  it('picks the same id whatever the order it is given them in, and none of none', () => {
    for (let key = 0; key < 50; key++) {
      assert.equal(pick(key, ids), pick(key, [...ids].reverse()))
    }
    assert.equal(pick(7, []), undefined)
  })

  it('spreads keys evenly and moves only the keys of an id that leaves', () => {
    const counts = new Map<string, number>()
    let moved = 0
    for (let key = 0; key < 4_000; key++) {
      const before = pick(key, ids)!
      counts.set(before, (counts.get(before) ?? 0) + 1)
      const after = pick(key, ['a', 'b', 'c'])
      if (before !== 'd') assert.equal(after, before)
      else moved++
    }
    for (const id of ids)
      assert.ok(Math.abs(counts.get(id)! - 1_000) < 120, `${id}: ${counts.get(id)}`)
    assert.equal(moved, counts.get('d'))
  })
})
