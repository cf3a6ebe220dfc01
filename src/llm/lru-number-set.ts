import { createNumberTable } from '../util/number-table.ts'

/**
 * A bounded set of numbers with least-recently-used eviction, O(1) per operation: a table from
 * value to slot (`NumberTable`: block hashes as Map keys are boxed doubles, an allocation a touch)
 * and a doubly linked list over preallocated typed arrays. (A plain Set used as an LRU by
 * delete-then-add leaves tombstones at its front that every eviction must skip, which turns hot
 * prefix indexes quadratic.) Slots grow on demand up to `capacity`, so small sets stay small.
 */
export interface LruNumberSet {
  readonly size: number
  readonly capacity: number
  has(value: number): boolean
  /**
   * Adds or refreshes `value` as the most recent; evicts the least recent when full. True when
   * `value` was not held before.
   */
  touch(value: number): boolean
  /** Removes `value`; false when it was not held. */
  delete(value: number): boolean
  /** Changes the capacity; shrinking evicts the least recent values beyond it. */
  resize(capacity: number): void
  /** Calls `fn` with every value held, least recent first. */
  forEach(fn: (value: number) => void): void
}

const NONE = -1

/** `onEvict` hears each value the set drops to stay within its capacity (not those deleted). */
export function createLruNumberSet(
  capacity: number,
  onEvict?: (value: number) => void,
): LruNumberSet {
  let max = Math.max(1, Math.floor(capacity))
  const slotOf = createNumberTable()
  // Slots given back by a shrink, reused before new ones are taken.
  const free: number[] = []
  let values = new Float64Array(Math.min(max, 64))
  let prev = new Int32Array(values.length)
  let next = new Int32Array(values.length)
  let used = 0
  let head = NONE // least recent
  let tail = NONE // most recent

  const unlink = (slot: number) => {
    const p = prev[slot]!
    const n = next[slot]!
    if (p === NONE) head = n
    else next[p] = n
    if (n === NONE) tail = p
    else prev[n] = p
  }
  const remove = (value: number): boolean => {
    const slot = slotOf.get(value)
    if (slot === NONE) return false
    unlink(slot)
    slotOf.delete(value)
    free.push(slot)
    return true
  }
  const append = (slot: number) => {
    prev[slot] = tail
    next[slot] = NONE
    if (tail === NONE) head = slot
    else next[tail] = slot
    tail = slot
  }
  const grow = () => {
    const length = Math.max(values.length + 1, Math.min(max, values.length * 2))
    const grown = new Float64Array(length)
    grown.set(values)
    values = grown
    const grownPrev = new Int32Array(length)
    grownPrev.set(prev)
    prev = grownPrev
    const grownNext = new Int32Array(length)
    grownNext.set(next)
    next = grownNext
  }

  return {
    get size() {
      return slotOf.size
    },
    get capacity() {
      return max
    },
    has: (value) => slotOf.get(value) !== NONE,
    touch(value) {
      const existing = slotOf.get(value)
      if (existing !== NONE) {
        if (existing !== tail) {
          unlink(existing)
          append(existing)
        }
        return false
      }
      let slot: number
      if (slotOf.size < max) {
        const reused = free.pop()
        if (reused !== undefined) {
          slot = reused
        } else {
          if (used === values.length) grow()
          slot = used++
        }
      } else {
        slot = head
        unlink(slot)
        slotOf.delete(values[slot]!)
        onEvict?.(values[slot]!)
      }
      values[slot] = value
      slotOf.set(value, slot)
      append(slot)
      return true
    },
    delete: remove,
    resize(capacity) {
      max = Math.max(1, Math.floor(capacity))
      while (slotOf.size > max) {
        const evicted = values[head]!
        remove(evicted)
        onEvict?.(evicted)
      }
    },
    forEach(fn) {
      for (let slot = head; slot !== NONE; slot = next[slot]!) fn(values[slot]!)
    },
  }
}
