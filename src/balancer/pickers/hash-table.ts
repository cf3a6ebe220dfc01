import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type PickContext } from '../picker.ts'
import { firstNotExcluded, weightOf } from './weight-index.ts'

/** A consistent-hash lookup structure (Maglev table or ring), built once per snapshot. */
export interface HashTable {
  /** The snapshot's endpoints sorted by id, so every process builds the same table. */
  readonly members: readonly Endpoint[]
  /** Weight of each member as used to build the table (all 1 when every weight is 0). */
  readonly weights: Float64Array
  readonly totalWeight: number
  /** The walk order: position -> index into `members`. */
  readonly owners: Int32Array
  /** Where a key's walk starts. */
  locate(keyHash: number): number
}

/** Sorted copy of a snapshot, by id: tables must not depend on the order the group lists members. */
export function sortById(eligible: readonly Endpoint[]): readonly Endpoint[] {
  return [...eligible].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Weights for table building; if every weight is 0, members share equally rather than vanish. */
export function tableWeights(members: readonly Endpoint[]): Float64Array {
  const weights = new Float64Array(members.length)
  let total = 0
  for (let i = 0; i < members.length; i++) {
    weights[i] = weightOf(members[i]!)
    total += weights[i]!
  }
  if (total === 0) weights.fill(1)
  return weights
}

export function sumOf(values: Float64Array): number {
  let total = 0
  for (const value of values) total += value
  return total
}

// Guards Math.ceil against round-off such as 1.25 * 4 / 5 = 1.0000000000000002.
const CEIL_SLACK = 1e-9

/**
 * Walks from the key's position to the first member that is not excluded and, with bounded load
 * (`boundedLoadFactor >= 1`), has room: `inflight + 1 <= ceil(factor * (totalInflight + 1) * w / W)`.
 * That is Google's "Consistent Hashing with Bounded Loads" (HAProxy's hash-balance-factor) with each
 * member's cap in proportion to its weight. The caps add up to more than the load, so some member
 * always has room; only exclusions can leave none, and then the first member not excluded on the
 * walk takes the request, staying as close to the key's home as possible.
 */
export function walkHashTable(
  table: HashTable,
  keyHash: number,
  ctx: PickContext,
  boundedLoadFactor: number,
): Endpoint | undefined {
  const { members, owners, weights } = table
  if (members.length === 0) return undefined
  const isBounded = boundedLoadFactor > 0
  const capPerWeight = isBounded ? capacityPerWeight(table, boundedLoadFactor) : 0
  const size = owners.length
  let position = table.locate(keyHash)
  let fallback: Endpoint | undefined
  for (let step = 0; step < size; step++) {
    const owner = owners[position]!
    position = position + 1 === size ? 0 : position + 1
    const endpoint = members[owner]!
    if (isExcluded(endpoint, ctx)) continue
    if (!isBounded) return endpoint
    if (endpoint.inflight + 1 <= Math.ceil(capPerWeight * weights[owner]! - CEIL_SLACK)) {
      return endpoint
    }
    fallback ??= endpoint
  }
  // A member too light to own any position is still better than no answer.
  return fallback ?? firstNotExcluded(members, ctx)
}

function capacityPerWeight(table: HashTable, factor: number): number {
  let totalInflight = 0
  for (let i = 0; i < table.members.length; i++) totalInflight += table.members[i]!.inflight
  return (factor * (totalInflight + 1)) / table.totalWeight
}
