import type { BucketResult, BucketSpec } from './state-store.ts'

/**
 * Token-bucket arithmetic shared by every StateStore implementation, so the in-process store,
 * the cross-worker store and a Redis script give the same answers for the same inputs.
 *
 * A bucket is remembered only while it is below capacity: a full bucket is indistinguishable
 * from a fresh one, so stores may forget it (see `msUntilFull`).
 */
export interface BucketState {
  readonly tokens: number
  readonly updatedAtMs: number
}

/** Throws a RangeError naming the bad field; stores call it before touching state. */
export function validateBucket(spec: BucketSpec, cost: number): void {
  if (!(Number.isFinite(spec.capacity) && spec.capacity > 0)) {
    throw new RangeError(`bucket capacity must be a positive finite number, got ${spec.capacity}`)
  }
  if (!(Number.isFinite(spec.refillPerSecond) && spec.refillPerSecond >= 0)) {
    throw new RangeError(
      `bucket refillPerSecond must be a finite number >= 0, got ${spec.refillPerSecond}`,
    )
  }
  if (!(Number.isFinite(cost) && cost >= 0)) {
    throw new RangeError(`bucket cost must be a finite number >= 0, got ${cost}`)
  }
}

/** Tokens held at `nowMs`: a missing bucket is full; refill is continuous and capped. */
export function refilledTokens(
  state: BucketState | undefined,
  spec: BucketSpec,
  nowMs: number,
): number {
  if (state === undefined) return spec.capacity
  return tokensAfter(Math.min(state.tokens, spec.capacity), spec, nowMs - state.updatedAtMs)
}

function tokensAfter(tokens: number, spec: BucketSpec, elapsedMs: number): number {
  if (elapsedMs <= 0) return tokens
  return Math.min(spec.capacity, tokens + (elapsedMs * spec.refillPerSecond) / 1000)
}

/**
 * The smallest whole number of milliseconds after which `cost` tokens are available, starting
 * from `tokens`. 0 when they already are. Infinity when they never will be: `cost` exceeds the
 * capacity, or the bucket does not refill.
 */
export function retryAfterMs(tokens: number, spec: BucketSpec, cost: number): number {
  if (cost <= tokens) return 0
  if (cost > spec.capacity || spec.refillPerSecond <= 0) return Number.POSITIVE_INFINITY
  const isEnough = (ms: number) => tokensAfter(tokens, spec, ms) >= cost
  let ms = Math.max(1, Math.ceil(((cost - tokens) * 1000) / spec.refillPerSecond))
  // The closed form can be off by a millisecond either way in floating point; nudge it so the
  // answer agrees with the refill arithmetic the next take will actually use.
  for (let i = 0; i < 4 && ms > 1 && isEnough(ms - 1); i++) ms--
  for (let i = 0; i < 4 && !isEnough(ms); i++) ms++
  return ms
}

/** Milliseconds until a bucket holding `tokens` is full again; Infinity when it never refills. */
export function msUntilFull(tokens: number, spec: BucketSpec): number {
  if (tokens >= spec.capacity) return 0
  if (spec.refillPerSecond <= 0) return Number.POSITIVE_INFINITY
  return ((spec.capacity - tokens) * 1000) / spec.refillPerSecond
}

export interface BucketTake {
  readonly result: BucketResult
  /** The bucket's tokens after this call, to store with `updatedAtMs = nowMs`. */
  readonly tokens: number
}

/** One take against a bucket: refill, then consume `cost` if it is all there (all or nothing). */
export function takeFromBucket(
  state: BucketState | undefined,
  spec: BucketSpec,
  cost: number,
  nowMs: number,
): BucketTake {
  const before = refilledTokens(state, spec, nowMs)
  if (cost <= before) {
    const tokens = before - cost
    return { result: { allowed: true, remaining: tokens, retryAfterMs: 0 }, tokens }
  }
  return {
    result: { allowed: false, remaining: before, retryAfterMs: retryAfterMs(before, spec, cost) },
    tokens: before,
  }
}
