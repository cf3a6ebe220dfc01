/**
 * The argument checks every StateStore makes before it touches state, so each store rejects the
 * same calls with the same words (docs/state.md, "The contract").
 */

/** A TTL, when given, is a positive finite number of milliseconds. */
export function checkTtlMs(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new RangeError(`ttlMs must be a positive finite number, got ${ttlMs}`)
  }
}

/** A counter's increment is finite. */
export function checkDelta(delta: number): void {
  if (!Number.isFinite(delta)) throw new RangeError(`delta must be finite, got ${delta}`)
}
