import { z } from 'zod'
import type { Endpoint } from '../../upstream/endpoint.ts'
import { isExcluded, type Picker } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'

/**
 * Full scan for the fewest in-flight requests, ignoring weights. The scan starts one past the last
 * winner, so equally loaded endpoints take turns instead of the first one taking every tie.
 */
export function createLeastConnectionsPicker(): Picker {
  let start = 0
  return {
    name: 'least-connections',
    pick(eligible, ctx) {
      const n = eligible.length
      if (n === 0) return undefined
      const offset = start % n
      let best: Endpoint | undefined
      let bestStep = 0
      for (let step = 0; step < n; step++) {
        const endpoint = eligible[(offset + step) % n]!
        if (isExcluded(endpoint, ctx)) continue
        if (best === undefined || endpoint.inflight < best.inflight) {
          best = endpoint
          bestStep = step
        }
      }
      if (best !== undefined) start = offset + bestStep + 1
      return best
    },
  }
}

export const leastConnectionsPicker = definePicker({
  name: 'least-connections',
  hashKey: 'ignored',
  optionsSchema: z.object({}).strict(),
  create: () => createLeastConnectionsPicker(),
})
