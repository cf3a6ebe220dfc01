import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HashTable } from '../../../../src/balancer/pickers/hash-table.ts'
import { buildMaglevTable, isPrime } from '../../../../src/balancer/pickers/maglev-table.ts'
import { makeEndpoints, snapshot } from '../../../conformance/picker-fixtures.ts'

const M = 65_537

function slotCounts(table: HashTable): Map<string, number> {
  const counts = new Map<string, number>()
  for (const owner of table.owners) {
    const id = table.members[owner]!.id
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

const ownerIds = (table: HashTable) => Array.from(table.owners, (owner) => table.members[owner]!.id)

describe('maglev table', () => {
  it('fills every slot', () => {
    for (const size of [13, 251, M]) {
      const table = buildMaglevTable(makeEndpoints([1, 2, 3]), size)
      assert.equal(table.owners.length, size)
      assert.ok(table.owners.every((owner) => owner >= 0 && owner < 3))
    }
  })

  it('gives equal-weight endpoints floor or ceil of M / n slots', () => {
    const counts = slotCounts(buildMaglevTable(makeEndpoints([1, 1, 1, 1, 1, 1, 1]), M))
    for (const count of counts.values())
      assert.ok(count === Math.floor(M / 7) || count === Math.ceil(M / 7))
  })

  it('gives weighted endpoints slots in proportion to weight', () => {
    const weights = [1, 2, 3, 4, 10]
    const counts = slotCounts(buildMaglevTable(makeEndpoints(weights), M))
    weights.forEach((weight, i) => {
      const expected = (M * weight) / 20
      const actual = counts.get(`e${i}`)!
      assert.ok(
        Math.abs(actual - expected) / expected < 0.005,
        `e${i}: ${actual} slots, expected ${expected}`,
      )
    })
  })

  it('builds the same table whatever order the snapshot lists endpoints in', () => {
    const eligible = makeEndpoints([1, 2, 3, 1, 1])
    const reversed = snapshot([...eligible].reverse())
    assert.deepEqual(
      ownerIds(buildMaglevTable(eligible, 251)),
      ownerIds(buildMaglevTable(reversed, 251)),
    )
  })

  it('reassigns a removed endpoint’s slots and few others', () => {
    const eligible = makeEndpoints(Array.from({ length: 10 }, () => 1))
    const before = ownerIds(buildMaglevTable(eligible, M))
    const after = ownerIds(buildMaglevTable(snapshot(eligible.filter((e) => e.id !== 'e4')), M))
    let survivorsMoved = 0
    for (let slot = 0; slot < M; slot++) {
      if (before[slot] !== 'e4' && before[slot] !== after[slot]) survivorsMoved++
    }
    assert.ok(survivorsMoved / M < 0.01, `${survivorsMoved} survivor slots changed`)
    assert.ok(!after.includes('e4'))
  })

  it('gives zero-weight endpoints no slots unless every weight is zero', () => {
    assert.equal(slotCounts(buildMaglevTable(makeEndpoints([0, 1]), 251)).get('e0'), undefined)
    assert.equal(slotCounts(buildMaglevTable(makeEndpoints([0, 0]), 251)).size, 2)
  })

  it('locates a key by its hash modulo the table size', () => {
    const table = buildMaglevTable(makeEndpoints([1, 1]), 251)
    assert.equal(table.locate(251 * 7 + 5), 5)
  })

  it('recognises primes', () => {
    for (const prime of [2, 3, 13, 251, 65_537, 5_000_011])
      assert.equal(isPrime(prime), true, String(prime))
    for (const other of [0, 1, 4, 9, 65_536, 2.5, -7])
      assert.equal(isPrime(other), false, String(other))
  })
})
