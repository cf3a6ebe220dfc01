import { createEntryOrder, type EntryOrder, type EntryOrderName } from './entry-order.ts'
import { createIndexedHeap, type IndexedHeap, NOT_IN_HEAP } from './indexed-heap.ts'
import type { QueuedEntry } from './queued-entry.ts'

/**
 * One priority band: every queued entry of one priority, split per tenant, with fair share across
 * tenants by virtual cost (the Virtual Token Counter of Sheng et al., "Fairness in Serving Large
 * Language Models", OSDI '24, with predicted cost in place of served tokens):
 *
 * - each tenant has a counter `virtualCost`; admitting an entry adds `predictedCost / weight`;
 * - the backlogged tenant with the lowest counter is offered first (ties: the one that became
 *   backlogged first);
 * - a tenant that becomes backlogged is lifted to at least the lowest counter among those already
 *   waiting (or, with none waiting, the counter last served), so time spent idle is not banked as
 *   credit to flood the band later.
 *
 * Over any interval in which two tenants stay backlogged, their admitted cost / weight differs by
 * at most one entry's cost / weight — a heavy tenant cannot starve a light one, whatever the ratio
 * of their arrival rates.
 */
export interface FairBand<T> {
  readonly priority: number
  readonly count: number
  readonly bytes: number
  /** Sum of `predictedCost` over queued entries. */
  readonly cost: number
  readonly sheddableCount: number
  readonly sheddableBytes: number
  /** Tenants with at least one queued entry. */
  readonly tenantCount: number
  /** Tenants whose counters are kept, idle ones included: bounded by the sweep, for tests. */
  readonly rememberedTenants: number
  add(entry: QueuedEntry<T>): void
  /** Removes a queued entry without charging its tenant (cancel, deadline, eviction). */
  remove(entry: QueuedEntry<T>): void
  /** Removes an entry being admitted and charges its tenant. */
  admit(entry: QueuedEntry<T>): void
  /**
   * Entries in offer order at `nowMs`: every backlogged tenant's first entry in fair order, then
   * every tenant's second, and so on, so that when a predicate refuses a tenant's head the next
   * tenant's head is tried before that tenant's second entry.
   */
  candidates(nowMs: number): Generator<QueuedEntry<T>, void, undefined>
  /** The first of `candidates(nowMs)`. */
  first(nowMs: number): QueuedEntry<T> | undefined
  /** The newest sheddable entry of the tenant with the most sheddable entries; for eviction. */
  evictionVictim(): QueuedEntry<T> | undefined
  depth(tenant: string): { readonly count: number; readonly bytes: number }
  /** Every tenant with an entry queued here, with what it holds. */
  holdings(): Generator<TenantHolding, void, undefined>
  /** One tenant's entries here, newest first: fair-share eviction's victims. */
  newestFirst(tenant: string): Generator<QueuedEntry<T>, void, undefined>
}

export interface TenantHolding {
  readonly tenant: string
  readonly count: number
  readonly bytes: number
}

export interface FairBandOptions {
  readonly priority: number
  readonly order: EntryOrderName
  readonly weightOf: (tenant: string) => number
}

interface TenantState<T> {
  readonly name: string
  readonly weight: number
  readonly order: EntryOrder<T>
  virtualCost: number
  /** Arrival rank of the current backlog, to break counter ties first-come first-served. */
  activationSeq: number
  heapSlot: number
  bytes: number
  sheddableCount: number
  shedHead: QueuedEntry<T> | undefined
  shedTail: QueuedEntry<T> | undefined
  newest: QueuedEntry<T> | undefined
}

/** Idle tenants kept for their counters beyond this many trigger a sweep. */
const IDLE_SWEEP_SLACK = 64

export function createFairBand<T>(options: FairBandOptions): FairBand<T> {
  const tenants = new Map<string, TenantState<T>>()
  const backlogged: IndexedHeap<TenantState<T>> = createIndexedHeap(
    (a, b) =>
      a.virtualCost < b.virtualCost ||
      (a.virtualCost === b.virtualCost && a.activationSeq < b.activationSeq),
    {
      get: (t) => t.heapSlot,
      set: (t, i) => {
        t.heapSlot = i
      },
    },
  )
  let count = 0
  let bytes = 0
  let cost = 0
  let sheddableCount = 0
  let sheddableBytes = 0
  let activations = 0
  /** The counter of the tenant last served, before its charge: where a tenant entering an empty
   *  band starts. */
  let lastServedVirtual = 0
  let idleSweepAt = IDLE_SWEEP_SLACK

  const activate = (tenant: TenantState<T>): void => {
    const floor = backlogged.peek()?.virtualCost ?? lastServedVirtual
    tenant.virtualCost = Math.max(tenant.virtualCost, floor)
    tenant.activationSeq = activations++
    backlogged.push(tenant)
  }

  const sweepIdle = (): void => {
    const floor = backlogged.peek()?.virtualCost ?? lastServedVirtual
    // A tenant at or below the floor would be lifted to it on return anyway: forgetting it loses
    // nothing. Those above it keep their counters so a burst after a short gap gains no credit.
    for (const [name, tenant] of tenants) {
      if (tenant.order.size === 0 && tenant.virtualCost <= floor) tenants.delete(name)
    }
    idleSweepAt = 2 * (tenants.size - backlogged.size) + IDLE_SWEEP_SLACK
  }

  const detach = (entry: QueuedEntry<T>): TenantState<T> => {
    const tenant = tenants.get(entry.tenant)!
    tenant.order.delete(entry)
    tenant.bytes -= entry.sizeBytes
    count--
    bytes -= entry.sizeBytes
    cost -= entry.predictedCost
    if (entry.sheddable) unlinkSheddable(tenant, entry)
    if (entry.tenantNext) entry.tenantNext.tenantPrev = entry.tenantPrev
    else tenant.newest = entry.tenantPrev
    if (entry.tenantPrev) entry.tenantPrev.tenantNext = entry.tenantNext
    entry.tenantPrev = undefined
    entry.tenantNext = undefined
    if (count === 0) {
      // Fractional costs leave float residue; an empty band must read exactly empty, or the
      // predicted wait of a drained queue would not be 0.
      cost = 0
      bytes = 0
      sheddableBytes = 0
    }
    return tenant
  }

  const unlinkSheddable = (tenant: TenantState<T>, entry: QueuedEntry<T>): void => {
    if (entry.shedPrev) entry.shedPrev.shedNext = entry.shedNext
    else tenant.shedHead = entry.shedNext
    if (entry.shedNext) entry.shedNext.shedPrev = entry.shedPrev
    else tenant.shedTail = entry.shedPrev
    entry.shedPrev = undefined
    entry.shedNext = undefined
    tenant.sheddableCount--
    sheddableCount--
    sheddableBytes -= entry.sizeBytes
  }

  const settleIfIdle = (tenant: TenantState<T>): void => {
    if (tenant.order.size > 0) return
    backlogged.delete(tenant)
    if (tenants.size - backlogged.size > idleSweepAt) sweepIdle()
  }

  return {
    priority: options.priority,
    get count() {
      return count
    },
    get bytes() {
      return bytes
    },
    get cost() {
      return cost
    },
    get sheddableCount() {
      return sheddableCount
    },
    get sheddableBytes() {
      return sheddableBytes
    },
    get tenantCount() {
      return backlogged.size
    },
    get rememberedTenants() {
      return tenants.size
    },
    add(entry) {
      let tenant = tenants.get(entry.tenant)
      if (tenant === undefined) {
        tenant = {
          name: entry.tenant,
          weight: options.weightOf(entry.tenant),
          order: createEntryOrder<T>(options.order),
          virtualCost: 0,
          activationSeq: 0,
          heapSlot: NOT_IN_HEAP,
          bytes: 0,
          sheddableCount: 0,
          shedHead: undefined,
          shedTail: undefined,
          newest: undefined,
        }
        tenants.set(entry.tenant, tenant)
      }
      if (tenant.order.size === 0) activate(tenant)
      tenant.order.add(entry)
      entry.tenantPrev = tenant.newest
      if (tenant.newest) tenant.newest.tenantNext = entry
      tenant.newest = entry
      tenant.bytes += entry.sizeBytes
      count++
      bytes += entry.sizeBytes
      cost += entry.predictedCost
      if (entry.sheddable) {
        entry.shedPrev = tenant.shedTail
        if (tenant.shedTail) tenant.shedTail.shedNext = entry
        else tenant.shedHead = entry
        tenant.shedTail = entry
        tenant.sheddableCount++
        sheddableCount++
        sheddableBytes += entry.sizeBytes
      }
    },
    remove(entry) {
      settleIfIdle(detach(entry))
    },
    admit(entry) {
      const tenant = detach(entry)
      lastServedVirtual = Math.max(lastServedVirtual, tenant.virtualCost)
      tenant.virtualCost += entry.predictedCost / tenant.weight
      backlogged.update(tenant)
      settleIfIdle(tenant)
    },
    first(nowMs) {
      return backlogged.peek()?.order.first(nowMs)
    },
    *candidates(nowMs) {
      // Round one offers each tenant's first entry without starting an iteration per tenant:
      // most walks end at the first offer.
      const backlog: TenantState<T>[] = []
      for (const tenant of backlogged.ordered()) {
        const first = tenant.order.first(nowMs)
        if (first === undefined) continue
        yield first
        backlog.push(tenant)
      }
      const later: Generator<QueuedEntry<T>, void, undefined>[] = []
      for (const tenant of backlog) {
        const entries = tenant.order.ordered(nowMs)
        entries.next() // the first, offered in round one
        later.push(entries)
      }
      while (later.length > 0) {
        for (let i = 0; i < later.length; ) {
          const next = later[i]!.next()
          if (next.done) {
            later.splice(i, 1)
          } else {
            yield next.value
            i++
          }
        }
      }
    },
    evictionVictim() {
      let heaviest: TenantState<T> | undefined
      for (const tenant of backlogged.items()) {
        if (tenant.sheddableCount === 0) continue
        if (
          heaviest === undefined ||
          tenant.sheddableCount > heaviest.sheddableCount ||
          (tenant.sheddableCount === heaviest.sheddableCount &&
            tenant.virtualCost > heaviest.virtualCost)
        ) {
          heaviest = tenant
        }
      }
      return heaviest?.shedTail
    },
    depth(name) {
      const tenant = tenants.get(name)
      return { count: tenant?.order.size ?? 0, bytes: tenant?.bytes ?? 0 }
    },
    *holdings() {
      for (const tenant of backlogged.items()) {
        yield { tenant: tenant.name, count: tenant.order.size, bytes: tenant.bytes }
      }
    },
    *newestFirst(name) {
      for (let entry = tenants.get(name)?.newest; entry; entry = entry.tenantPrev) yield entry
    },
  }
}
