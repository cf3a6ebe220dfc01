/**
 * Where an item sits in one heap. Items carry their own slot (a field per heap they can be in) so
 * that `delete` and `update` are O(log n) without a side Map: the admission queue removes entries
 * from the middle of its heaps on every cancel, deadline and eviction.
 */
export interface HeapSlot<T> {
  get(item: T): number
  set(item: T, index: number): void
}

/** A binary min-heap whose items can be removed or re-keyed in place. */
export interface IndexedHeap<T> {
  readonly size: number
  push(item: T): void
  peek(): T | undefined
  pop(): T | undefined
  has(item: T): boolean
  /** Removes `item` if present; returns whether it was. */
  delete(item: T): boolean
  /** Restores heap order after `item`'s key changed. */
  update(item: T): void
  /**
   * Items in ascending order without removing them, found lazily through a frontier heap of the
   * next candidates: O(k log k) for the first k, so a scan that stops early stays cheap. The heap
   * must not change while the iteration runs.
   */
  ordered(): Generator<T, void, undefined>
  /** Items in no particular order, for scans. */
  items(): readonly T[]
}

/** The slot value of an item that is in no heap. */
export const NOT_IN_HEAP = -1

export function createIndexedHeap<T>(
  less: (a: T, b: T) => boolean,
  slot: HeapSlot<T>,
): IndexedHeap<T> {
  const heap: T[] = []

  const place = (item: T, index: number): void => {
    heap[index] = item
    slot.set(item, index)
  }

  const siftUp = (start: number): void => {
    const item = heap[start]!
    let index = start
    while (index > 0) {
      const parent = (index - 1) >> 1
      const above = heap[parent]!
      if (!less(item, above)) break
      place(above, index)
      index = parent
    }
    place(item, index)
  }

  const siftDown = (start: number): void => {
    const item = heap[start]!
    let index = start
    for (;;) {
      const left = 2 * index + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && less(heap[right]!, heap[left]!) ? right : left
      if (!less(heap[child]!, item)) break
      place(heap[child]!, index)
      index = child
    }
    place(item, index)
  }

  const removeAt = (index: number): T => {
    const item = heap[index]!
    const last = heap.pop()!
    if (index < heap.length) {
      place(last, index)
      siftDown(index)
      siftUp(slot.get(last))
    }
    slot.set(item, NOT_IN_HEAP)
    return item
  }

  const has = (item: T): boolean => {
    const index = slot.get(item)
    return index >= 0 && index < heap.length && heap[index] === item
  }

  return {
    get size() {
      return heap.length
    },
    push(item) {
      heap.push(item)
      siftUp(heap.length - 1)
    },
    peek: () => heap[0],
    pop: () => (heap.length === 0 ? undefined : removeAt(0)),
    has,
    delete(item) {
      if (!has(item)) return false
      removeAt(slot.get(item))
      return true
    },
    update(item) {
      if (!has(item)) return
      const index = slot.get(item)
      siftUp(index)
      siftDown(slot.get(item))
    },
    *ordered() {
      if (heap.length === 0) return
      // The frontier holds indices into `heap`; a child enters it once its parent has been yielded.
      const frontier: number[] = [0]
      const lessAt = (a: number, b: number) => less(heap[a]!, heap[b]!)
      while (frontier.length > 0) {
        const top = frontier[0]!
        const last = frontier.pop()!
        if (frontier.length > 0) {
          frontier[0] = last
          siftIndexDown(frontier, lessAt)
        }
        yield heap[top]!
        const left = 2 * top + 1
        if (left < heap.length) {
          frontier.push(left)
          siftIndexUp(frontier, lessAt)
        }
        if (left + 1 < heap.length) {
          frontier.push(left + 1)
          siftIndexUp(frontier, lessAt)
        }
      }
    },
    items: () => heap,
  }
}

function siftIndexUp(frontier: number[], less: (a: number, b: number) => boolean): void {
  let index = frontier.length - 1
  const value = frontier[index]!
  while (index > 0) {
    const parent = (index - 1) >> 1
    if (!less(value, frontier[parent]!)) break
    frontier[index] = frontier[parent]!
    index = parent
  }
  frontier[index] = value
}

function siftIndexDown(frontier: number[], less: (a: number, b: number) => boolean): void {
  let index = 0
  const value = frontier[0]!
  for (;;) {
    const left = 2 * index + 1
    if (left >= frontier.length) break
    const right = left + 1
    const child = right < frontier.length && less(frontier[right]!, frontier[left]!) ? right : left
    if (!less(frontier[child]!, value)) break
    frontier[index] = frontier[child]!
    index = child
  }
  frontier[index] = value
}
