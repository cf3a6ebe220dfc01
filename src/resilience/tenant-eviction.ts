import type { FairBand } from './fair-band.ts'
import type { QueuedEntry } from './queued-entry.ts'

export interface TenantEvictionInput<T> {
  readonly tenant: string
  readonly priority: number
  readonly sizeBytes: number
  /** Every band, highest priority first. */
  readonly bands: readonly FairBand<T>[]
  readonly count: number
  readonly bytes: number
  readonly maxEntries: number
  readonly maxBytes: number
}

/**
 * The per-tenant bound of a full queue. Fair share only orders tenants within a band, so a tenant
 * that arrived first could otherwise hold every place and turn everyone else away. The fair share
 * of a tenant is an equal split of `maxEntries` (and of `maxBytes`) among the tenants queued,
 * counting the newcomer's. A newcomer whose tenant would still hold no more than that may take
 * the place of the newest entries of the tenant holding the most, while that tenant holds more
 * than its share, from the newcomer's band or lower bands (lowest first): a tenant alone may fill
 * the queue, but not keep it once others want in, and no tenant is pushed below its share.
 *
 * Returns the entries to evict, or undefined when the newcomer is refused: then nothing is
 * evicted. Reads only; the queue evicts.
 */
export function planTenantEviction<T>(input: TenantEvictionInput<T>): QueuedEntry<T>[] | undefined {
  const held = new Map<string, { count: number; bytes: number }>()
  for (const band of input.bands) {
    for (const { tenant, count, bytes } of band.holdings()) {
      const sum = held.get(tenant)
      if (sum === undefined) held.set(tenant, { count, bytes })
      else {
        sum.count += count
        sum.bytes += bytes
      }
    }
  }
  const mine = held.get(input.tenant) ?? { count: 0, bytes: 0 }
  const tenants = held.size + (held.has(input.tenant) ? 0 : 1)
  if (tenants < 2) return undefined
  const shareCount = input.maxEntries / tenants
  const shareBytes = input.maxBytes / tenants
  if (mine.count + 1 > shareCount || mine.bytes + input.sizeBytes > shareBytes) return undefined

  const reachable = input.bands.filter((band) => band.priority <= input.priority).reverse()
  const cursors = new Map<string, Generator<QueuedEntry<T>, void, undefined>>()
  const victimsOf = function* (tenant: string) {
    for (const band of reachable) yield* band.newestFirst(tenant)
  }
  const victims: QueuedEntry<T>[] = []
  let count = input.count
  let bytes = input.bytes
  while (count + 1 > input.maxEntries || bytes + input.sizeBytes > input.maxBytes) {
    const byCount = count + 1 > input.maxEntries
    let heaviest: string | undefined
    let most = 0
    for (const [tenant, sum] of held) {
      const amount = byCount ? sum.count : sum.bytes
      if (tenant === input.tenant || amount <= (byCount ? shareCount : shareBytes)) continue
      if (amount > most) {
        heaviest = tenant
        most = amount
      }
    }
    if (heaviest === undefined) return undefined
    let cursor = cursors.get(heaviest)
    if (cursor === undefined) {
      cursor = victimsOf(heaviest)
      cursors.set(heaviest, cursor)
    }
    const victim = cursor.next()
    const sum = held.get(heaviest)!
    if (victim.done) {
      // All it holds is above the newcomer's band: out of reach, so out of the running.
      held.delete(heaviest)
      continue
    }
    // Short of bytes only (room in count is made first and stays made), an empty entry frees none.
    if (!byCount && victim.value.sizeBytes === 0) continue
    victims.push(victim.value)
    sum.count--
    sum.bytes -= victim.value.sizeBytes
    count--
    bytes -= victim.value.sizeBytes
  }
  return victims
}
