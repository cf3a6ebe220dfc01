const MIN_RETRY_AFTER_MS = 1_000
const MAX_RETRY_AFTER_MS = 60_000

/**
 * The one clamp for every `Retry-After` the admission queue suggests: a predicted wait rounded up
 * to whole seconds (the header's unit) within [1 s, 60 s]. A prediction of Infinity (something
 * queued, nothing admitted yet) or of hours says "not soon", not "come back in hours": 60 s.
 */
export function retryAfterHintMs(predictedWaitMs: number): number {
  if (Number.isNaN(predictedWaitMs)) return MAX_RETRY_AFTER_MS
  const seconds = Math.ceil(Math.min(predictedWaitMs, MAX_RETRY_AFTER_MS) / 1000)
  return Math.max(MIN_RETRY_AFTER_MS, seconds * 1000)
}
