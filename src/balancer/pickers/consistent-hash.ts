import type { Picker, PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createHashedPicker, type HashedOptions, hashedOptionsSchema } from './hashed-picker.ts'

export const consistentHashOptionsSchema = hashedOptionsSchema({ boundedLoadFactor: 1.25 })

/**
 * Consistent hashing on the upstream's `hashKey` (header, cookie, query, route, API key, ...):
 * Maglev by default, or a ketama ring. Bounded load is on by default so one hot key cannot pin an
 * endpoint far above its share: the overflow walks on to the key's next endpoints, deterministically.
 */
export function createConsistentHashPicker(options: HashedOptions, deps: PickerDeps): Picker {
  return createHashedPicker('consistent-hash', options, deps, (ctx) => ctx.hashKey)
}

export const consistentHashPicker = definePicker({
  name: 'consistent-hash',
  hashKey: 'required',
  optionsSchema: consistentHashOptionsSchema,
  create: (options, deps) => createConsistentHashPicker(options, deps),
})
