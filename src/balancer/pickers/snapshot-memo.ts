import type { Endpoint } from '../../upstream/endpoint.ts'

/**
 * Derived state per eligible snapshot (rings, tables, smooth-WRR weights), built once per
 * snapshot identity. A new identity means membership or health changed, so it gets fresh state.
 * The WeakMap lets a group that alternates between subsets reuse each one's state, and drops it
 * once the group lets the snapshot go; the last-seen fast path skips the WeakMap on most picks.
 */
export function memoizeBySnapshot<T extends object>(
  build: (eligible: readonly Endpoint[]) => T,
): (eligible: readonly Endpoint[]) => T {
  const bySnapshot = new WeakMap<readonly Endpoint[], T>()
  let lastSnapshot: readonly Endpoint[] | undefined
  let lastValue: T | undefined
  return (eligible) => {
    if (eligible === lastSnapshot && lastValue !== undefined) return lastValue
    let value = bySnapshot.get(eligible)
    if (value === undefined) {
      value = build(eligible)
      bySnapshot.set(eligible, value)
    }
    lastSnapshot = eligible
    lastValue = value
    return value
  }
}
