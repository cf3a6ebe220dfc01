import type { Clock, Timer } from '../util/clock.ts'
import { checkDelta, checkTtlMs } from './call-arguments.ts'
import type { BucketResult, BucketSpec, StateStore } from './state-store.ts'
import { deliver, type Subscription } from './subscription.ts'
import { msUntilFull, takeFromBucket, validateBucket } from './token-bucket.ts'

export interface MemoryStateDeps {
  readonly clock: Clock
  /**
   * Told about a subscriber that threw. Delivery to the other subscribers goes on regardless;
   * without this the error is dropped, because one bad handler must not take the process down.
   */
  readonly onHandlerError?: (error: unknown, channel: string) => void
}

export interface MemoryStateOptions {
  /** How often the background sweep runs while any key is stored, ms. */
  readonly sweepIntervalMs?: number
  /** Keys examined per sweep batch; bounds the work one timer tick can do. */
  readonly sweepBatchSize?: number
  /**
   * Most keys held. A new key past it evicts the oldest-stored one, as Redis evicts under
   * `maxmemory`: random session ids from clients must not grow the process without bound for
   * their whole TTL. Default 250,000 (about 60 MB of sticky bindings).
   */
  readonly maxKeys?: number
}

/** The in-process StateStore, plus a key count for metrics and tests. */
export interface MemoryState extends StateStore {
  /** Keys held, including expired ones the sweep has not reached yet. */
  readonly size: number
}

/** Counters and plain values share one kind, as in Redis: `get` reads a counter as a string. */
interface ValueEntry {
  readonly kind: 'value'
  value: string | number
  expiresAtMs: number
}

/** A bucket below capacity; it "expires" when it would be full again and so equal a fresh one. */
interface BucketEntry {
  readonly kind: 'bucket'
  tokens: number
  updatedAtMs: number
  expiresAtMs: number
}

type Entry = ValueEntry | BucketEntry

// Like Redis's active expiry: a sweep tick runs another batch only while batches come back mostly
// expired, and never more than this many, so one tick's work stays bounded.
const MAX_BATCHES_PER_SWEEP = 8

/**
 * The in-process StateStore: one Map as the keyspace, lazy expiry on access plus an incremental
 * background sweep, and pub/sub delivered on the microtask queue. Every operation completes
 * synchronously; the promises exist only to share the contract with remote stores.
 */
export function createMemoryState(
  deps: MemoryStateDeps,
  options: MemoryStateOptions = {},
): MemoryState {
  const { clock } = deps
  const onHandlerError = deps.onHandlerError ?? (() => {})
  const sweepIntervalMs = options.sweepIntervalMs ?? 1000
  const sweepBatchSize = options.sweepBatchSize ?? 1000
  const maxKeys = Math.max(1, options.maxKeys ?? 250_000)
  const entries = new Map<string, Entry>()
  const channels = new Map<string, Set<Subscription>>()
  let sweepTimer: Timer | undefined
  let cursor: Iterator<[string, Entry]> | undefined
  let isClosed = false

  const assertOpen = () => {
    if (isClosed) throw new Error('state store is closed')
  }

  /** The entry under `key` unless it has expired, in which case it is dropped now. */
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAtMs <= clock.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }

  const expiryFor = (ttlMs: number | undefined): number => {
    checkTtlMs(ttlMs)
    return ttlMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + ttlMs
  }

  const sweep = () => {
    sweepTimer = undefined
    const nowMs = clock.now()
    for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP; batch++) {
      // A Map iterator survives inserts and deletes, so the cursor resumes where the last
      // tick stopped and every key is visited once per full pass.
      cursor ??= entries.entries()
      let seen = 0
      let expired = 0
      while (seen < sweepBatchSize) {
        const step = cursor.next()
        if (step.done) {
          cursor = undefined
          break
        }
        seen++
        if (step.value[1].expiresAtMs <= nowMs) {
          entries.delete(step.value[0])
          expired++
        }
      }
      if (cursor === undefined || expired * 4 < seen) break
    }
    armSweep()
  }

  const armSweep = () => {
    if (sweepTimer === undefined && !isClosed && entries.size > 0) {
      sweepTimer = clock.setTimer(sweepIntervalMs, sweep)
    }
  }

  const store = (key: string, entry: Entry) => {
    // Stored again, a key goes to the back: the oldest stored is the one evicted.
    if (!entries.delete(key) && entries.size >= maxKeys) {
      const oldest = entries.keys().next().value
      if (oldest !== undefined) entries.delete(oldest)
    }
    entries.set(key, entry)
    armSweep()
  }

  const wrongKind = (key: string, entry: Entry, wanted: string) =>
    new TypeError(`state key "${key}" holds a ${entry.kind}, not a ${wanted}`)

  return {
    kind: 'memory',
    connected: true,

    get size() {
      return entries.size
    },

    async incr(key: string, delta = 1, ttlMs?: number): Promise<number> {
      assertOpen()
      checkDelta(delta)
      const expiresAtMs = expiryFor(ttlMs)
      const entry = live(key)
      if (entry === undefined) {
        store(key, { kind: 'value', value: delta, expiresAtMs })
        return delta
      }
      if (entry.kind !== 'value') throw wrongKind(key, entry, 'counter')
      const next = toCounter(key, entry.value) + delta
      // The TTL was fixed when the key was created: fixed windows must not slide.
      entry.value = next
      return next
    },

    async get(key: string): Promise<string | undefined> {
      assertOpen()
      const entry = live(key)
      if (entry === undefined) return undefined
      if (entry.kind !== 'value') throw wrongKind(key, entry, 'value')
      return typeof entry.value === 'number' ? String(entry.value) : entry.value
    },

    async getAndTouch(key: string, ttlMs: number): Promise<string | undefined> {
      assertOpen()
      const expiresAtMs = expiryFor(ttlMs)
      const entry = live(key)
      if (entry === undefined) return undefined
      if (entry.kind !== 'value') throw wrongKind(key, entry, 'value')
      entry.expiresAtMs = expiresAtMs
      return typeof entry.value === 'number' ? String(entry.value) : entry.value
    },

    async set(key: string, value: string, ttlMs?: number): Promise<void> {
      assertOpen()
      store(key, { kind: 'value', value, expiresAtMs: expiryFor(ttlMs) })
    },

    async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
      assertOpen()
      const expiresAtMs = expiryFor(ttlMs)
      if (live(key) !== undefined) return false
      store(key, { kind: 'value', value, expiresAtMs })
      return true
    },

    async delete(key: string): Promise<boolean> {
      assertOpen()
      if (live(key) === undefined) return false
      entries.delete(key)
      return true
    },

    async take(key: string, bucket: BucketSpec, cost = 1): Promise<BucketResult> {
      assertOpen()
      validateBucket(bucket, cost)
      const entry = live(key)
      if (entry !== undefined && entry.kind !== 'bucket') throw wrongKind(key, entry, 'bucket')
      const nowMs = clock.now()
      const { result, tokens } = takeFromBucket(entry, bucket, cost, nowMs)
      const fullInMs = msUntilFull(tokens, bucket)
      if (fullInMs <= 0) {
        // Full again: forgetting it is the same as keeping it, and keeps idle keys from piling up.
        if (entry !== undefined) entries.delete(key)
      } else if (entry === undefined) {
        store(key, { kind: 'bucket', tokens, updatedAtMs: nowMs, expiresAtMs: nowMs + fullInMs })
      } else {
        entry.tokens = tokens
        entry.updatedAtMs = nowMs
        entry.expiresAtMs = nowMs + fullInMs
      }
      return result
    },

    async publish(channel: string, message: string): Promise<void> {
      assertOpen()
      const subscribers = channels.get(channel)
      if (subscribers === undefined || subscribers.size === 0) return
      // Snapshot now: a handler subscribed after this publish must not receive it.
      const snapshot = [...subscribers]
      queueMicrotask(() => deliver(snapshot, channel, message, onHandlerError))
    },

    subscribe(channel: string, handler: (message: string) => void): () => void {
      assertOpen()
      const subscription: Subscription = { handler, active: true }
      let subscribers = channels.get(channel)
      if (subscribers === undefined) {
        subscribers = new Set()
        channels.set(channel, subscribers)
      }
      subscribers.add(subscription)
      return () => {
        if (!subscription.active) return
        subscription.active = false
        const current = channels.get(channel)
        current?.delete(subscription)
        if (current?.size === 0) channels.delete(channel)
      }
    },

    async close(): Promise<void> {
      if (isClosed) return
      isClosed = true
      sweepTimer?.clear()
      sweepTimer = undefined
      cursor = undefined
      entries.clear()
      for (const subscribers of channels.values()) {
        for (const subscription of subscribers) subscription.active = false
      }
      channels.clear()
    },
  }
}

/** Reads a stored value as a number, accepting only the canonical form `String(n)` produces. */
function toCounter(key: string, value: string | number): number {
  if (typeof value === 'number') return value
  const n = Number(value)
  if (!Number.isFinite(n) || String(n) !== value) {
    throw new TypeError(`state key "${key}" holds a value that is not a number`)
  }
  return n
}
