import { z } from 'zod'
import type { PickContext, Picker, PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createHashedPicker, type HashedOptions, hashedOptionsSchema } from './hashed-picker.ts'

/**
 * A ketama ring of 160 points per unit of weight, as vLLM production-stack's `session` logic
 * (uhashring) and SGLang's `consistent_hashing` build it, and no bounded load: pure stickiness is
 * the published design, hot-spotting included.
 */
export const consistentHashSessionOptionsSchema = hashedOptionsSchema({
  boundedLoadFactor: 0,
}).extend({ algorithm: z.enum(['maglev', 'ring']).default('ring') })

/**
 * Session affinity on a hash ring (research note §3, `session`; §2, `consistent_hashing`): the
 * LLM request's session key (from a session header), else the upstream's `hashKey`, picks the
 * endpoint. A request with neither gets a weight-proportional random endpoint.
 */
export function createConsistentHashSessionPicker(
  options: HashedOptions,
  deps: PickerDeps,
): Picker {
  return createHashedPicker('consistent-hash-session', options, deps, sessionKeyOf)
}

function sessionKeyOf(ctx: PickContext): string | undefined {
  return ctx.llm?.sessionKey ?? ctx.hashKey
}

export const consistentHashSessionPicker = definePicker({
  name: 'consistent-hash-session',
  hashKey: 'fallback',
  optionsSchema: consistentHashSessionOptionsSchema,
  create: (options, deps) => createConsistentHashSessionPicker(options, deps),
})
