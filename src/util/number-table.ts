/**
 * A hash map from numbers to small non-negative integers, by open addressing over typed arrays.
 * The prefix index and the pinned-block counts key millions of operations a second by 53-bit
 * block hashes: as `Map` keys those are boxed doubles, so every lookup allocates, and a large Map
 * under steady insert-and-delete churn rehashes over and over (512 pins and unpins on a 60k-entry
 * Map took 350 µs, against 40 µs here; Node 20). Linear probing with backward-shift deletion
 * leaves no tombstones, so churn never degrades it. Keys compare as `===` does after turning -0
 * into 0; NaN is never a key.
 */
export interface NumberTable {
  readonly size: number
  /** The key's value, or -1 when the key is absent. */
  get(key: number): number
  /** Sets the key's value; `value` must be a non-negative int32. */
  set(key: number, value: number): void
  /** Removes the key; false when it was absent. */
  delete(key: number): boolean
  /**
   * Adds `delta` to the key's value (an absent key counts 0) in one probe, removing the key when
   * the sum is 0 or less; returns the sum. A count kept per key costs one lookup, not two.
   */
  add(key: number, delta: number): number
}

const EMPTY = -1
const MIN_SLOTS = 16

// The key's IEEE-754 bits, read through one shared scratch view: hashing allocates nothing.
const keyBits = new Float64Array(1)
const keyWords = new Uint32Array(keyBits.buffer)

export function createNumberTable(expectedSize = 0): NumberTable {
  let slots = MIN_SLOTS
  // At most half full: short probe runs, and a free slot always ends one.
  while (slots < expectedSize * 2) slots *= 2
  let keys = new Float64Array(slots)
  let values = new Int32Array(slots).fill(EMPTY)
  let mask = slots - 1
  let size = 0

  const home = (key: number): number => {
    keyBits[0] = key + 0 // -0 + 0 is 0: both zeros share a slot, as they compare equal
    return (Math.imul(keyWords[0]! ^ Math.imul(keyWords[1]!, 0x85ebca6b), 0x9e3779b1) >>> 0) & mask
  }
  /** The key's slot, or the bitwise complement of the free slot where it would go. */
  const find = (key: number): number => {
    let i = home(key)
    for (;;) {
      if (values[i] === EMPTY) return ~i
      if (keys[i] === key) return i
      i = (i + 1) & mask
    }
  }
  const rehash = (to: number) => {
    const oldKeys = keys
    const oldValues = values
    keys = new Float64Array(to)
    values = new Int32Array(to).fill(EMPTY)
    mask = to - 1
    for (let j = 0; j < oldValues.length; j++) {
      if (oldValues[j] === EMPTY) continue
      const i = ~find(oldKeys[j]!)
      keys[i] = oldKeys[j]!
      values[i] = oldValues[j]!
    }
  }

  /** A new key at `free`, the slot `find` gave for it, unless the table must grow first. */
  const insertAt = (free: number, key: number, value: number) => {
    let i = free
    if ((size + 1) * 2 > values.length) {
      rehash(values.length * 2)
      i = ~find(key)
    }
    keys[i] = key
    values[i] = value
    size++
  }
  const removeAt = (at: number) => {
    let i = at
    size--
    // Backward shift: each later entry of the run that may sit at `i` (its home is not in
    // (i, j], cyclically) moves up, so no probe for it ever meets a gap before it.
    for (let j = (i + 1) & mask; values[j] !== EMPTY; j = (j + 1) & mask) {
      const h = home(keys[j]!)
      const movable = i <= j ? h <= i || h > j : h <= i && h > j
      if (!movable) continue
      keys[i] = keys[j]!
      values[i] = values[j]!
      i = j
    }
    values[i] = EMPTY
    // Give memory back once far below the peak (a drained endpoint's pins, a shrunk LRU).
    if (values.length > MIN_SLOTS && size * 8 < values.length) rehash(values.length / 2)
  }

  return {
    get size() {
      return size
    },
    get(key) {
      const i = find(key)
      return i < 0 ? EMPTY : values[i]!
    },
    set(key, value) {
      const i = find(key)
      if (i >= 0) values[i] = value
      else insertAt(~i, key, value)
    },
    add(key, delta) {
      const i = find(key)
      const sum = (i < 0 ? 0 : values[i]!) + delta
      if (sum <= 0) {
        if (i >= 0) removeAt(i)
      } else if (i >= 0) {
        values[i] = sum
      } else {
        insertAt(~i, key, sum)
      }
      return sum
    },
    delete(key) {
      const i = find(key)
      if (i < 0) return false
      removeAt(i)
      return true
    },
  }
}
