import { hashText53 } from './text-hash.ts'

/**
 * Rendezvous (highest-random-weight) hashing: of the `count` ids `idAt(0..count)`, the one whose
 * hash with `key` is highest. Everyone who knows the same ids picks the same one without sharing
 * state, and removing an id moves only the keys that picked it. Undefined when `count` is 0. Ids
 * are read by index so a caller can pick among entries it already holds without building a list.
 */
export function rendezvousPick(
  key: number,
  count: number,
  idAt: (index: number) => string,
): string | undefined {
  let chosen: string | undefined
  let best = -1
  for (let i = 0; i < count; i++) {
    const id = idAt(i)
    const weight = hashText53(id, 0, id.length, key)
    if (weight > best) {
      best = weight
      chosen = id
    }
  }
  return chosen
}
