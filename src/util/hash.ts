/** 32-bit FNV-1a over a string's UTF-16 code units: cheap, allocation-free, stable across runs. */
export function fnv1a32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** A 32-bit finaliser (murmur3 fmix32) to spread sequential or low-entropy inputs. */
export function mix32(value: number): number {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A well-mixed 32-bit hash of a string key. */
export function hashKey32(text: string, seed = 0): number {
  return mix32(fnv1a32(text, (0x811c9dc5 ^ seed) >>> 0))
}
