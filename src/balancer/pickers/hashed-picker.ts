import { z } from 'zod'
import { hashKey32 } from '../../util/hash.ts'
import type { PickContext, Picker, PickerDeps } from '../picker.ts'
import { buildHashRing } from './hash-ring.ts'
import { walkHashTable } from './hash-table.ts'
import { buildMaglevTable, isPrime } from './maglev-table.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'
import { buildWeightIndex, pickByWeight } from './weight-index.ts'

/** `policyOptions` shared by the hashing policies; only the bounded-load default differs. */
export function hashedOptionsSchema(defaults: { readonly boundedLoadFactor: number }) {
  return z
    .object({
      algorithm: z.enum(['maglev', 'ring']).default('maglev'),
      /** Maglev slots; prime. About 100x the endpoint count keeps shares within 1%. */
      tableSize: z
        .int()
        .min(3)
        .max(5_000_011)
        .refine(isPrime, 'tableSize must be a prime number')
        .default(65_537),
      /** Ring points per unit of weight (nginx and ketama use 160). */
      vnodesPerWeight: z.int().min(1).max(100_000).default(160),
      /** 0 turns bounded load off; otherwise at least 1 (1.25 lets an endpoint carry 25% over its share). */
      boundedLoadFactor: z
        .number()
        .refine(
          (factor) => factor === 0 || factor >= 1,
          'boundedLoadFactor must be 0 (off) or >= 1',
        )
        .default(defaults.boundedLoadFactor),
    })
    .strict()
}

export type HashedOptions = z.output<ReturnType<typeof hashedOptionsSchema>>

/**
 * Consistent hashing on a per-request key, shared by `consistent-hash` and `ip-hash`.
 * Tables are keyed by snapshot identity, so they are rebuilt only on membership change. A request
 * without a key gets a weight-proportional random endpoint: there is nothing to be sticky to.
 */
export function createHashedPicker(
  name: string,
  options: HashedOptions,
  deps: PickerDeps,
  keyOf: (ctx: PickContext) => string | undefined,
): Picker {
  const tableFor = memoizeBySnapshot((eligible) =>
    options.algorithm === 'ring'
      ? buildHashRing(eligible, options.vnodesPerWeight)
      : buildMaglevTable(eligible, options.tableSize),
  )
  const weightsFor = memoizeBySnapshot(buildWeightIndex)
  return {
    name,
    pick(eligible, ctx) {
      if (eligible.length === 0) return undefined
      const key = keyOf(ctx)
      if (key === undefined) return pickByWeight(eligible, weightsFor(eligible), ctx, deps.random)
      return walkHashTable(tableFor(eligible), hashKey32(key), ctx, options.boundedLoadFactor)
    },
  }
}
