import { z } from 'zod'
import { isExcluded, type Picker } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'

/** Plain rotation, ignoring weights. */
export function createRoundRobinPicker(): Picker {
  let next = 0
  return {
    name: 'round-robin',
    pick(eligible, ctx) {
      const n = eligible.length
      for (let i = 0; i < n; i++) {
        const endpoint = eligible[(next + i) % n]!
        if (isExcluded(endpoint, ctx)) continue
        next = (next + i + 1) % n
        return endpoint
      }
      return undefined
    },
  }
}

export const roundRobinPicker = definePicker({
  name: 'round-robin',
  hashKey: 'ignored',
  optionsSchema: z.object({}).strict(),
  create: () => createRoundRobinPicker(),
})
