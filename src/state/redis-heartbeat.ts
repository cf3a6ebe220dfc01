import type { Redis } from 'ioredis'
import type { Clock, Timer } from '../util/clock.ts'

/**
 * PINGs a ready connection every `intervalMs`. A paused or wedged Redis keeps its socket open, and
 * a connection finds out that nothing answers only while a command waits (its socket timeout
 * then drops it): with no traffic, nothing would, and the store would read up over a Redis that
 * answers nothing. A subscriber connection never sends a command of its own once subscribed, so
 * without this a connection the server or a middlebox forgot would go unnoticed for good; PING is
 * valid in subscriber mode. Returns the function that stops it.
 */
export function startRedisHeartbeat(
  redis: Redis,
  options: { readonly intervalMs: number },
  deps: { readonly clock: Clock },
): () => void {
  let timer: Timer | undefined
  let isPinging = false
  const beat = () => {
    // One at a time: on a stalled connection a PING waits for the socket timeout, and more of
    // them would only queue behind it.
    if (redis.status === 'ready' && !isPinging) {
      isPinging = true
      // A PING that fails needs no report of its own: the socket timeout it trips drops the
      // connection, which is logged and read as down.
      redis
        .ping()
        .catch(() => {})
        .finally(() => {
          isPinging = false
        })
    }
    timer = deps.clock.setTimer(options.intervalMs, beat)
  }
  timer = deps.clock.setTimer(options.intervalMs, beat)
  return () => {
    timer?.clear()
    timer = undefined
  }
}
