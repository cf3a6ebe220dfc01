import type { Endpoint } from '../../upstream/endpoint.ts'
import { hashKey32 } from '../../util/hash.ts'
import { type HashTable, sortById, sumOf, tableWeights } from './hash-table.ts'

/** Past this many points the ring is scaled down to bound memory (8 bytes a point) and build time. */
export const MAX_RING_POINTS = 1 << 20

// Points are packed as hash * 2^20 + member index into one float64 so one typed-array sort orders
// them, ties broken by member (sorted id) order; both fit in the 53-bit mantissa.
const INDEX_SPACE = 1 << 20

/**
 * Ketama-style ring: each member owns `round(vnodesPerWeight * weight)` points at
 * hash("<id>#<n>"), and a key belongs to the first point clockwise from its hash. A membership
 * change moves only the keys of the arcs that change hands (the minimal 1/n), and a member's
 * points don't depend on anyone else's, unless the ring had to be scaled to `MAX_RING_POINTS`.
 * Balance is approximate: a member's share is off by about 1/sqrt(points) (8% at 160 points).
 */
export function buildHashRing(eligible: readonly Endpoint[], vnodesPerWeight: number): HashTable {
  const members = sortById(eligible)
  if (members.length >= INDEX_SPACE) throw new RangeError('hash ring: too many endpoints')
  const weights = tableWeights(members)
  const totalWeight = sumOf(weights)
  const wanted = totalWeight * vnodesPerWeight
  const scale = wanted > MAX_RING_POINTS ? MAX_RING_POINTS / wanted : 1
  const counts = new Int32Array(members.length)
  let size = 0
  for (let i = 0; i < members.length; i++) {
    const weight = weights[i]!
    counts[i] = weight > 0 ? Math.max(1, Math.round(weight * vnodesPerWeight * scale)) : 0
    size += counts[i]!
  }

  const packed = new Float64Array(size)
  let k = 0
  for (let i = 0; i < members.length; i++) {
    const id = members[i]!.id
    for (let v = 0; v < counts[i]!; v++) packed[k++] = hashKey32(`${id}#${v}`) * INDEX_SPACE + i
  }
  packed.sort()

  const points = new Uint32Array(size)
  const owners = new Int32Array(size)
  for (let p = 0; p < size; p++) {
    const value = packed[p]!
    points[p] = Math.floor(value / INDEX_SPACE)
    owners[p] = value % INDEX_SPACE
  }
  return {
    members,
    weights,
    totalWeight,
    owners,
    locate: (keyHash) => firstAtOrAfter(points, keyHash),
  }
}

/** Index of the first point >= keyHash, wrapping to 0 past the last. */
function firstAtOrAfter(points: Uint32Array, keyHash: number): number {
  let lo = 0
  let hi = points.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid]! < keyHash) lo = mid + 1
    else hi = mid
  }
  return lo === points.length ? 0 : lo
}
