import type { KvBlockPool } from './kv-block-pool.ts'
import { blockHashAt, type SimRequest } from './sim-request.ts'

export interface SchedulerLimits {
  readonly blockSizeTokens: number
  readonly maxNumSeqs: number
  readonly maxNumBatchedTokens: number
}

export interface ScheduledEntry {
  readonly request: SimRequest
  readonly numNewTokens: number
  /** True when the entry is one decode token (context `request.numTokens`), false for prefill. */
  readonly isDecode: boolean
}

export interface StepPlan {
  readonly entries: readonly ScheduledEntry[]
  readonly prefillTokens: number
  readonly decodeSeqs: number
  readonly decodeContextTokens: number
}

export interface SchedulerCounters {
  prefixCacheQueries: number
  prefixCacheHits: number
  preemptions: number
}

export interface Scheduler {
  readonly running: readonly SimRequest[]
  readonly waiting: readonly SimRequest[]
  readonly counters: Readonly<SchedulerCounters>
  enqueue(request: SimRequest): void
  /** Plans one step that starts at `startMs` (vLLM V1 `Scheduler.schedule`). */
  schedule(startMs: number): StepPlan
  /** Removes a finished or aborted request and frees its blocks. */
  remove(request: SimRequest): void
}

/**
 * vLLM V1's scheduling loop, FCFS: running requests first (decodes and unfinished prefill chunks,
 * preempting the most recently admitted request by recompute when KV blocks run out), then, if
 * nothing was preempted, waiting requests in order while the token budget and `max_num_seqs`
 * allow. Prefill is chunked to the remaining token budget. A waiting request's prefix is looked up
 * in the cache in whole blocks, capped at `numTokens − 1`.
 */
export function createScheduler(limits: SchedulerLimits, pool: KvBlockPool): Scheduler {
  const blockSize = limits.blockSizeTokens
  const running: SimRequest[] = []
  const waiting: SimRequest[] = []
  const counters: SchedulerCounters = { prefixCacheQueries: 0, prefixCacheHits: 0, preemptions: 0 }

  const freeBlocks = (request: SimRequest): void => {
    // Tail blocks first, so that they are evicted before the shared head of the prefix.
    pool.free(request.blocks.slice().reverse())
    request.blocks = []
    request.numCachedBlocks = 0
  }

  const allocateSlots = (
    request: SimRequest,
    numNewTokens: number,
    numComputed: number,
    hitBlocks: readonly number[],
  ): boolean => {
    const required = Math.ceil((numComputed + numNewTokens) / blockSize)
    const numNewBlocks = Math.max(0, required - request.blocks.length - hitBlocks.length)
    let evictableHits = 0
    for (const id of hitBlocks) if (pool.isFree(id)) evictableHits++
    if (numNewBlocks > pool.numFreeBlocks - evictableHits) return false
    pool.touch(hitBlocks)
    for (const id of hitBlocks) request.blocks.push(id)
    if (numNewBlocks > 0) for (const id of pool.allocate(numNewBlocks)!) request.blocks.push(id)
    const fullBlocks = Math.floor(
      Math.min(numComputed + numNewTokens, request.numTokens) / blockSize,
    )
    for (let i = request.numCachedBlocks; i < fullBlocks; i++) {
      pool.cacheBlock(request.blocks[i]!, blockHashAt(request, i))
    }
    request.numCachedBlocks = Math.max(request.numCachedBlocks, fullBlocks)
    return true
  }

  const preempt = (request: SimRequest): void => {
    freeBlocks(request)
    request.numComputed = 0
    request.status = 'waiting'
    request.preemptions++
    waiting.unshift(request)
    counters.preemptions++
  }

  const scheduleRunning = (entries: ScheduledEntry[], tokenBudget: number): [number, boolean] => {
    let budget = tokenBudget
    let preempted = false
    let i = 0
    while (i < running.length && budget > 0) {
      const request = running[i]!
      const numNew = Math.min(request.numTokens - request.numComputed, budget)
      if (numNew <= 0) {
        i++
        continue
      }
      let isScheduled = false
      for (;;) {
        if (allocateSlots(request, numNew, request.numComputed, [])) {
          isScheduled = true
          break
        }
        const victim = running.pop()!
        preempt(victim)
        preempted = true
        if (victim === request) break
      }
      if (!isScheduled) break
      entries.push(entryFor(request, numNew))
      budget -= numNew
      i++
    }
    return [budget, preempted]
  }

  const scheduleWaiting = (
    entries: ScheduledEntry[],
    tokenBudget: number,
    startMs: number,
  ): void => {
    let budget = tokenBudget
    while (waiting.length > 0 && budget > 0 && running.length < limits.maxNumSeqs) {
      const request = waiting[0]!
      if (request.readyMs > startMs) break
      const maxHitBlocks = Math.floor((request.numTokens - 1) / blockSize)
      const hit = pool.findCachedPrefix((i) => blockHashAt(request, i), maxHitBlocks)
      const numComputed = hit.length * blockSize
      const numNew = Math.min(request.numTokens - numComputed, budget)
      if (!allocateSlots(request, numNew, numComputed, hit)) break
      waiting.shift()
      request.numComputed = numComputed
      request.status = 'running'
      request.cachedPromptTokens ??= numComputed
      running.push(request)
      counters.prefixCacheQueries += request.numTokens
      counters.prefixCacheHits += numComputed
      entries.push(entryFor(request, numNew))
      budget -= numNew
    }
  }

  return {
    running,
    waiting,
    counters,
    enqueue(request) {
      request.status = 'waiting'
      waiting.push(request)
    },
    schedule(startMs) {
      const entries: ScheduledEntry[] = []
      const [budget, preempted] = scheduleRunning(entries, limits.maxNumBatchedTokens)
      if (!preempted) scheduleWaiting(entries, budget, startMs)
      let prefillTokens = 0
      let decodeSeqs = 0
      let decodeContextTokens = 0
      for (const e of entries) {
        e.request.numComputed += e.numNewTokens
        if (e.isDecode) {
          decodeSeqs++
          decodeContextTokens += e.request.numTokens
        } else {
          prefillTokens += e.numNewTokens
        }
      }
      return { entries, prefillTokens, decodeSeqs, decodeContextTokens }
    },
    remove(request) {
      const list = request.status === 'running' ? running : waiting
      const index = list.indexOf(request)
      if (index >= 0) list.splice(index, 1)
      freeBlocks(request)
    },
  }
}

function entryFor(request: SimRequest, numNewTokens: number): ScheduledEntry {
  const isDecode =
    request.numOutput > 0 && numNewTokens === 1 && request.numComputed === request.numTokens - 1
  return { request, numNewTokens, isDecode }
}
