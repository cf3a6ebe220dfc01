import { z } from 'zod'
import type { Picker, PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'
import { buildWeightIndex, pickByWeight } from './weight-index.ts'

/** A weight-proportional random draw: stateless, so many balancer instances need no coordination. */
export function createRandomPicker(deps: PickerDeps): Picker {
  const indexFor = memoizeBySnapshot(buildWeightIndex)
  return {
    name: 'random',
    pick(eligible, ctx) {
      return pickByWeight(eligible, indexFor(eligible), ctx, deps.random)
    },
  }
}

export const randomPicker = definePicker({
  name: 'random',
  hashKey: 'ignored',
  optionsSchema: z.object({}).strict(),
  create: (_options, deps) => createRandomPicker(deps),
})
