/**
 * Shared state behind one interface: counters, token buckets, key/value with TTL, and pub/sub.
 * Rate limits, budgets, breakers, sticky bindings and prefix hints all use it. The in-process
 * implementation answers at once; cross-worker and Redis implementations keep the same contract,
 * which is why every call returns a promise.
 */
export interface StateStore {
  readonly kind: string
  /**
   * Whether the store answers now: the in-process store always does, a remote one while its
   * connections are up. Nothing waits on it (callers go on without state when a command fails);
   * it is for operators, as `aya_state_store_up`.
   */
  readonly connected: boolean

  /** Adds `delta` to a counter and returns the new value. A TTL starts when the key is created. */
  incr(key: string, delta?: number, ttlMs?: number): Promise<number>

  get(key: string): Promise<string | undefined>
  /**
   * Reads a value and, when there is one, restarts its TTL at `ttlMs` in the same step: an expiry
   * that slides with use (a session binding lives `ttlMs` past its last use, not its first).
   */
  getAndTouch(key: string, ttlMs: number): Promise<string | undefined>
  /** Stores a value; without a TTL it lives until deleted. */
  set(key: string, value: string, ttlMs?: number): Promise<void>
  /** Stores only when the key is absent; returns whether it stored. */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>
  delete(key: string): Promise<boolean>

  /** Takes `cost` tokens from a bucket that refills continuously. */
  take(key: string, bucket: BucketSpec, cost?: number): Promise<BucketResult>

  publish(channel: string, message: string): Promise<void>
  /** Returns a function that unsubscribes. Handlers never receive messages published before. */
  subscribe(channel: string, handler: (message: string) => void): () => void

  close(): Promise<void>
}

export interface BucketSpec {
  /** Most tokens the bucket holds; a fresh bucket starts full. */
  readonly capacity: number
  readonly refillPerSecond: number
}

export interface BucketResult {
  readonly allowed: boolean
  /** Tokens left after this take (or before it, when refused). */
  readonly remaining: number
  /** When refused: how long until `cost` tokens are available. 0 when allowed. */
  readonly retryAfterMs: number
}
