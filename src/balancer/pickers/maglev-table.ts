import type { Endpoint } from '../../upstream/endpoint.ts'
import { hashKey32 } from '../../util/hash.ts'
import { type HashTable, sortById, sumOf, tableWeights } from './hash-table.ts'

const OFFSET_SEED = 0x6d61676c
const SKIP_SEED = 0x65762d73

/**
 * Maglev lookup table (Eisenbud et al., NSDI '16) with Envoy's weighted turns: each member walks
 * its own permutation of the slots (offset + j * skip mod M, M prime) and claims the next free
 * slot on its turn; a member of weight w gets a turn in w / maxWeight of the rounds, so its share
 * of slots follows its weight. Equal-weight members end up with floor or ceil of M / n slots each.
 * Lookups are one modulo; a membership change moves slightly more than the minimal 1/n of keys.
 */
export function buildMaglevTable(eligible: readonly Endpoint[], tableSize: number): HashTable {
  const members = sortById(eligible)
  const weights = tableWeights(members)
  const owners = new Int32Array(tableSize).fill(-1)
  const table: HashTable = {
    members,
    weights,
    totalWeight: sumOf(weights),
    owners,
    locate: (keyHash) => keyHash % tableSize,
  }
  const n = members.length
  if (n === 0) return table

  // Slots and skips are below tableSize (<= 5,000,011), so int32 sums of two never overflow.
  const positions = new Int32Array(n)
  const skips = new Int32Array(n)
  const turnsTaken = new Float64Array(n)
  let maxWeight = 0
  for (let i = 0; i < n; i++) {
    const id = members[i]!.id
    positions[i] = hashKey32(id, OFFSET_SEED) % tableSize
    skips[i] = (hashKey32(id, SKIP_SEED) % (tableSize - 1)) + 1
    maxWeight = Math.max(maxWeight, weights[i]!)
  }

  let filled = 0
  for (let round = 1; filled < tableSize; round++) {
    for (let i = 0; i < n && filled < tableSize; i++) {
      const weight = weights[i]!
      // Envoy's rule: a member of weight w takes its k-th turn once round * w >= (k - 1) * maxWeight.
      if (weight === 0 || round * weight < turnsTaken[i]! * maxWeight) continue
      turnsTaken[i]!++
      const skip = skips[i]!
      let slot = positions[i]!
      while (owners[slot] !== -1) {
        slot += skip
        if (slot >= tableSize) slot -= tableSize
      }
      owners[slot] = i
      slot += skip
      positions[i] = slot >= tableSize ? slot - tableSize : slot
      filled++
    }
  }
  return table
}

/** Trial division is plenty for table sizes up to a few million, checked once at config load. */
export function isPrime(value: number): boolean {
  if (!Number.isInteger(value) || value < 2) return false
  if (value % 2 === 0) return value === 2
  for (let d = 3; d * d <= value; d += 2) if (value % d === 0) return false
  return true
}
