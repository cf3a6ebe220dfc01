import { z } from 'zod'
import type { Endpoint } from '../../upstream/endpoint.ts'
import type { Picker, PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { memoizeBySnapshot } from './snapshot-memo.ts'
import { buildWeightIndex, pickByWeight, weightOf } from './weight-index.ts'

export const leastRequestOptionsSchema = z
  .object({
    /** Candidates drawn per pick (Envoy's `choice_count`). */
    choiceCount: z.int().min(2).max(16).default(2),
  })
  .strict()

export type LeastRequestOptions = z.output<typeof leastRequestOptionsSchema>

/**
 * Power of `choiceCount` choices: draw candidates in proportion to weight (with replacement, as
 * Envoy does) and keep the one with the fewest in-flight requests per unit of weight.
 * Nearly as good as a full scan (Mitzenmacher) while tolerating the stale, per-process view that
 * makes a full scan herd. On a tie the first draw wins, so an idle fleet is loaded in proportion
 * to weight. Failures since an endpoint's last success count as load (see `loadPerWeight`).
 */
export function createLeastRequestPicker(options: LeastRequestOptions, deps: PickerDeps): Picker {
  const indexFor = memoizeBySnapshot(buildWeightIndex)
  return {
    name: 'least-request',
    pick(eligible, ctx) {
      const index = indexFor(eligible)
      let best = pickByWeight(eligible, index, ctx, deps.random)
      if (best === undefined) return undefined
      let bestLoad = loadPerWeight(best)
      for (let c = 1; c < options.choiceCount; c++) {
        const candidate = pickByWeight(eligible, index, ctx, deps.random)!
        const load = loadPerWeight(candidate)
        if (load < bestLoad) {
          best = candidate
          bestLoad = load
        }
      }
      return best
    },
  }
}

function loadPerWeight(endpoint: Endpoint): number {
  const weight = weightOf(endpoint)
  if (!(weight > 0)) return Number.POSITIVE_INFINITY
  // An endpoint that fails at once always has nothing in flight, and would win every draw it is
  // in (the black hole). With failures since its last success, the requests this one would join,
  // itself included, count once per attempt it is expected to take (see `attemptsPerSuccess`),
  // less the request itself, so a healthy endpoint's load stays `inflight / weight` exactly.
  return ((endpoint.inflight + 1) * endpoint.attemptsPerSuccess - 1) / weight
}

export const leastRequestPicker = definePicker({
  name: 'least-request',
  hashKey: 'ignored',
  optionsSchema: leastRequestOptionsSchema,
  create: (options, deps) => createLeastRequestPicker(options, deps),
})
