import type { StateStore } from '../state/state-store.ts'
import type { Clock } from '../util/clock.ts'

/**
 * The shared state between DES routers (`--shared-state`), in virtual time: pub/sub only, which is
 * all router replicas share (prefix announcements and in-flight load). Each message reaches every
 * subscriber `delayMs` later, as Redis pub/sub would (its round trip is well under a millisecond
 * on a LAN). The DES runs its events in one synchronous loop, so the in-memory store's pub/sub,
 * which delivers on a microtask, would not deliver until the replay ended.
 */
export function createDesPubSub(
  options: { readonly delayMs: number },
  deps: { readonly clock: Clock },
): StateStore {
  const channels = new Map<string, Set<(message: string) => void>>()
  const absent = (what: string) => Promise.reject(new Error(`${what} is not modelled in the DES`))
  return {
    kind: 'des',
    connected: true,
    incr: () => absent('incr'),
    get: () => absent('get'),
    getAndTouch: () => absent('getAndTouch'),
    set: () => absent('set'),
    setIfAbsent: () => absent('setIfAbsent'),
    delete: () => absent('delete'),
    take: () => absent('take'),
    async publish(channel, message) {
      const subscribers = channels.get(channel)
      if (subscribers === undefined || subscribers.size === 0) return
      // Those subscribed when it was published hear it, as in Redis.
      const snapshot = [...subscribers]
      deps.clock.setTimer(options.delayMs, () => {
        for (const handler of snapshot) handler(message)
      })
    },
    subscribe(channel, handler) {
      let subscribers = channels.get(channel)
      if (subscribers === undefined) {
        subscribers = new Set()
        channels.set(channel, subscribers)
      }
      const own = subscribers
      own.add(handler)
      return () => {
        own.delete(handler)
      }
    },
    async close() {
      channels.clear()
    },
  }
}
