import type { Clock, Timer } from '../util/clock.ts'

export interface BodyStallLimits {
  /** Longest silence between two pieces of the body. */
  readonly idleMs: number
  /** Longest the whole body may take, however steadily it trickles in. */
  readonly deadlineMs?: number | undefined
  /**
   * Whether body bytes wait for their reader now: silence then is the reader's, not the client's,
   * and does not count.
   */
  readonly isHeld?: (() => boolean) | undefined
}

export interface BodyStallWatch {
  /** A piece of the body arrived. */
  noteChunk(): void
  stop(): void
}

/**
 * Times a request body that the client may stall or trickle. One timer, armed for the nearer
 * limit and re-armed when it fires early: chunks only note their time, so a body of hundreds of
 * chunks does not re-arm a timer for each. `onStall` gets the reason, once.
 */
export function createBodyStallWatch(
  limits: BodyStallLimits,
  onStall: (reason: string) => void,
  deps: { readonly clock: Clock },
): BodyStallWatch {
  const { idleMs, deadlineMs = Number.POSITIVE_INFINITY, isHeld } = limits
  const startedAtMs = deps.clock.now()
  let lastChunkAtMs = startedAtMs
  let timer: Timer | undefined
  const check = () => {
    timer = undefined
    const nowMs = deps.clock.now()
    if (isHeld?.()) lastChunkAtMs = nowMs
    const deadlineAtMs = startedAtMs + deadlineMs
    const idleAtMs = lastChunkAtMs + idleMs
    if (nowMs >= deadlineAtMs) return onStall(`the request body took over ${deadlineMs} ms`)
    if (nowMs >= idleAtMs) return onStall(`the request body stalled for ${idleMs} ms`)
    timer = deps.clock.setTimer(Math.min(deadlineAtMs, idleAtMs) - nowMs, check)
  }
  timer = deps.clock.setTimer(Math.min(idleMs, deadlineMs), check)
  return {
    noteChunk() {
      lastChunkAtMs = deps.clock.now()
    },
    stop() {
      timer?.clear()
      timer = undefined
    },
  }
}
