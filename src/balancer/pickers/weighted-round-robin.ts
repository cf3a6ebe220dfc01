import { z } from 'zod'
import { isExcluded, type Picker } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createSmoothState, pickSmooth } from './smooth-weighted.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'

/**
 * Smooth weighted round robin exactly as nginx does it. State is per snapshot and starts from zero
 * when membership changes, as after an nginx reload. Excluded endpoints sit out the step entirely
 * (they neither gain weight nor count in the total), like nginx's `tried` bitmap on a retry.
 */
export function createWeightedRoundRobinPicker(): Picker {
  const stateFor = memoizeBySnapshot(createSmoothState)
  return {
    name: 'weighted-round-robin',
    pick(eligible, ctx) {
      if (eligible.length === 0) return undefined
      const state = stateFor(eligible)
      const { scores } = state
      const hasExclusions = ctx.exclude !== undefined && ctx.exclude.size > 0
      for (let i = 0; i < eligible.length; i++) {
        scores[i] = hasExclusions && isExcluded(eligible[i]!, ctx) ? Number.NaN : 0
      }
      const winner = pickSmooth(state, 0)
      return winner < 0 ? undefined : eligible[winner]
    },
  }
}

export const weightedRoundRobinPicker = definePicker({
  name: 'weighted-round-robin',
  hashKey: 'ignored',
  optionsSchema: z.object({}).strict(),
  create: () => createWeightedRoundRobinPicker(),
})
