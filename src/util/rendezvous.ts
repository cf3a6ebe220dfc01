import { hashText53 } from './text-hash.ts'

/**
 * Rendezvous (highest-random-weight) hashing: of `ids`, the one whose hash with `key` is highest.
 * Everyone who knows the same ids picks the same one without sharing state, and removing an id
 * moves only the keys that picked it. Undefined when `ids` is empty.
 */
export function rendezvousPick(key: number, ids: Iterable<string>): string | undefined {
  let chosen: string | undefined
  let best = -1
  for (const id of ids) {
    const weight = hashText53(id, 0, id.length, key)
    if (weight > best) {
      best = weight
      chosen = id
    }
  }
  return chosen
}
