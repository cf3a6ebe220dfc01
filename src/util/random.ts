/** A source of uniform numbers in [0, 1). Injected wherever code decides. */
export type Random = () => number

/** mulberry32: small, fast and good enough for load balancing and simulation; reproducible by seed. */
export function createSeededRandom(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function createSystemRandom(): Random {
  return Math.random
}

/** An integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n)
}
