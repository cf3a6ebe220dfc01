import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildHashRing, MAX_RING_POINTS } from '../../../../src/balancer/pickers/hash-ring.ts'
import type { HashTable } from '../../../../src/balancer/pickers/hash-table.ts'
import { hashKey32 } from '../../../../src/util/hash.ts'
import { makeEndpoints, snapshot } from '../../../conformance/picker-fixtures.ts'

const ownerOf = (table: HashTable, key: string) =>
  table.members[table.owners[table.locate(hashKey32(key))]!]!.id

describe('hash ring', () => {
  it('places vnodesPerWeight × weight points per endpoint', () => {
    const ring = buildHashRing(makeEndpoints([1, 2, 5]), 100)
    const counts = [0, 0, 0]
    for (const owner of ring.owners) counts[owner]!++
    assert.deepEqual(counts, [100, 200, 500])
  })

  it('maps keys the same whatever order the snapshot lists endpoints in', () => {
    const eligible = makeEndpoints([1, 2, 3, 1])
    const a = buildHashRing(eligible, 160)
    const b = buildHashRing(snapshot([...eligible].reverse()), 160)
    for (let i = 0; i < 1_000; i++) assert.equal(ownerOf(a, `k${i}`), ownerOf(b, `k${i}`))
  })

  it('hands only a removed endpoint’s keys to others', () => {
    const eligible = makeEndpoints([1, 1, 1, 1, 1])
    const before = buildHashRing(eligible, 160)
    const after = buildHashRing(snapshot(eligible.filter((e) => e.id !== 'e2')), 160)
    for (let i = 0; i < 5_000; i++) {
      const owner = ownerOf(before, `k${i}`)
      if (owner !== 'e2') assert.equal(ownerOf(after, `k${i}`), owner)
    }
  })

  it('scales down rather than grow past MAX_RING_POINTS', () => {
    const ring = buildHashRing(makeEndpoints(Array.from({ length: 10 }, () => 1_000)), 160)
    assert.ok(ring.owners.length <= MAX_RING_POINTS + 10)
    assert.ok(ring.owners.length >= MAX_RING_POINTS - 10)
  })

  it('wraps a key past the last point to the first', () => {
    const ring = buildHashRing(makeEndpoints([1, 1]), 4)
    assert.equal(ring.locate(0xffffffff), 0)
    assert.equal(ring.locate(0), 0)
  })
})
