import { z } from 'zod'
import { isExcluded, type Picker } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createSmoothState, pickSmooth } from './smooth-weighted.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'

/**
 * Full scan for the lowest `inflight / weight`, as nginx's least_conn compares
 * `conns × best.weight < best.conns × weight`. Ties go to smooth weighted round robin among the
 * tied, so an idle fleet (every ratio 0) is loaded exactly in proportion to weight, and under
 * sustained concurrency capacity fills in proportion to weight as well.
 */
export function createWeightedLeastConnectionsPicker(): Picker {
  const stateFor = memoizeBySnapshot(createSmoothState)
  return {
    name: 'weighted-least-connections',
    pick(eligible, ctx) {
      if (eligible.length === 0) return undefined
      const state = stateFor(eligible)
      const { scores, weights } = state
      const hasExclusions = ctx.exclude !== undefined && ctx.exclude.size > 0
      let min = Number.POSITIVE_INFINITY
      for (let i = 0; i < eligible.length; i++) {
        const endpoint = eligible[i]!
        if (hasExclusions && isExcluded(endpoint, ctx)) {
          scores[i] = Number.NaN
          continue
        }
        // Exact ratios of integers round identically, so equal loads tie exactly.
        const score = endpoint.inflight / weights[i]!
        scores[i] = score
        if (score < min) min = score
      }
      const winner = pickSmooth(state, min)
      return winner < 0 ? undefined : eligible[winner]
    },
  }
}

export const weightedLeastConnectionsPicker = definePicker({
  name: 'weighted-least-connections',
  hashKey: 'ignored',
  optionsSchema: z.object({}).strict(),
  create: () => createWeightedLeastConnectionsPicker(),
})
