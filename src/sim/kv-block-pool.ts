/**
 * vLLM V1's KV block pool (`vllm/v1/core/block_pool.py`), reduced to what the simulator needs:
 *
 * - Block 0 is the reserved null block, so `numGpuBlocks − 1` blocks are usable.
 * - Free blocks sit in one queue in eviction order (front first). A freed block keeps its hash and
 *   stays findable in the prefix cache until it is handed out again (LRU reuse).
 * - Usage is `1 − free/(numGpuBlocks − 1)`: cached blocks that no request holds count as free.
 */
export interface KvBlockPool {
  readonly numGpuBlocks: number
  readonly numUsableBlocks: number
  readonly numFreeBlocks: number
  readonly numCachedBlocks: number
  usage(): number
  /** Ids of the longest run of leading block hashes found in the cache, at most `maxBlocks`. */
  findCachedPrefix(hashOf: (index: number) => number, maxBlocks: number): number[]
  /** Whether a block is held by no request (a cache hit on it uses up one free block). */
  isFree(blockId: number): boolean
  /** Takes a reference on cached blocks (a prefix hit), pulling free ones out of the queue. */
  touch(blockIds: readonly number[]): void
  /** Hands out `count` blocks from the front of the free queue, evicting their cache entries. */
  allocate(count: number): number[] | undefined
  /** Registers a full block under its chained hash so later requests can hit it. */
  cacheBlock(blockId: number, hash: number): void
  /** Drops one reference on each block; blocks no one holds join the back of the free queue. */
  free(blockIds: readonly number[]): void
}

export function createKvBlockPool(numGpuBlocks: number): KvBlockPool {
  if (!Number.isInteger(numGpuBlocks) || numGpuBlocks < 2) {
    throw new Error(`numGpuBlocks must be an integer ≥ 2, got ${numGpuBlocks}`)
  }
  const numUsableBlocks = numGpuBlocks - 1
  const refCount = new Int32Array(numGpuBlocks)
  const blockHash = new Float64Array(numGpuBlocks).fill(Number.NaN)
  const cache = new Map<number, number>()
  // The free queue is an intrusive doubly linked list over block ids (vLLM's
  // FreeKVCacheBlockQueue). Block 0, the null block, is never free, so it serves as the sentinel:
  // next[0] is the front (evicted first) and prev[0] the back.
  const next = new Int32Array(numGpuBlocks)
  const prev = new Int32Array(numGpuBlocks)
  const isQueued = new Uint8Array(numGpuBlocks)
  let numFree = 0
  const pushBack = (id: number): void => {
    const last = prev[0]!
    next[last] = id
    prev[id] = last
    next[id] = 0
    prev[0] = id
    isQueued[id] = 1
    numFree++
  }
  const unlink = (id: number): void => {
    next[prev[id]!] = next[id]!
    prev[next[id]!] = prev[id]!
    isQueued[id] = 0
    numFree--
  }
  for (let id = 1; id < numGpuBlocks; id++) pushBack(id)

  const evict = (id: number): void => {
    const hash = blockHash[id]!
    if (Number.isNaN(hash)) return
    if (cache.get(hash) === id) cache.delete(hash)
    blockHash[id] = Number.NaN
  }

  return {
    numGpuBlocks,
    numUsableBlocks,
    get numFreeBlocks() {
      return numFree
    },
    get numCachedBlocks() {
      return cache.size
    },
    usage: () => 1 - numFree / numUsableBlocks,
    findCachedPrefix(hashOf, maxBlocks) {
      const ids: number[] = []
      for (let i = 0; i < maxBlocks; i++) {
        const id = cache.get(hashOf(i))
        if (id === undefined) break
        ids.push(id)
      }
      return ids
    },
    isFree: (blockId) => refCount[blockId] === 0,
    touch(blockIds) {
      for (const id of blockIds) {
        if (isQueued[id] === 1) unlink(id)
        refCount[id]!++
      }
    },
    allocate(count) {
      if (count > numFree) return undefined
      const ids: number[] = []
      for (let i = 0; i < count; i++) {
        const id = next[0]!
        unlink(id)
        evict(id)
        refCount[id] = 1
        ids.push(id)
      }
      return ids
    },
    cacheBlock(blockId, hash) {
      if (!Number.isNaN(blockHash[blockId]!) || cache.has(hash)) return
      blockHash[blockId] = hash
      cache.set(hash, blockId)
    },
    free(blockIds) {
      for (const id of blockIds) {
        const left = --refCount[id]!
        if (left === 0) pushBack(id)
        else if (left < 0) throw new Error(`KV block ${id} freed more often than taken`)
      }
    },
  }
}
