import type { PickContext, Picker, PickerDeps } from '../picker.ts'
import { definePicker } from '../picker-definition.ts'
import { createHashedPicker, type HashedOptions, hashedOptionsSchema } from './hashed-picker.ts'

/**
 * Bounded load is off by default: ip-hash is chosen for stickiness (sessions held in memory on one
 * endpoint), which a spill would break. Turn it on when many clients share one NAT address.
 */
export const ipHashOptionsSchema = hashedOptionsSchema({ boundedLoadFactor: 0 })

const IPV4_MAPPED_PREFIX = '::ffff:'

/**
 * Consistent hashing on the client address (after `trustedProxies`), so a client keeps its
 * endpoint and a membership change moves only about 1/n of clients, unlike nginx's modulo ip_hash.
 */
export function createIpHashPicker(options: HashedOptions, deps: PickerDeps): Picker {
  return createHashedPicker('ip-hash', options, deps, clientKey)
}

// A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; one client should be one key.
function clientKey(ctx: PickContext): string | undefined {
  const ip = ctx.clientIp
  if (ip === undefined || ip === '') return undefined
  return ip.startsWith(IPV4_MAPPED_PREFIX) && ip.includes('.')
    ? ip.slice(IPV4_MAPPED_PREFIX.length)
    : ip
}

export const ipHashPicker = definePicker({
  name: 'ip-hash',
  hashKey: 'ignored',
  optionsSchema: ipHashOptionsSchema,
  create: (options, deps) => createIpHashPicker(options, deps),
})
