import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { StateStore } from './state-store.ts'
import { deliver, type Subscription } from './subscription.ts'

/** The frame's head: the sender's `randomUUID()`. */
const SENDER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i

/**
 * The Redis store's pub/sub. A message is delivered to this instance's own subscribers at once,
 * in process, and reaches other instances through Redis; each message carries its sender's id so
 * an instance skips its own echo. That keeps the contract's ordering for local subscribers (a
 * handler never receives a message published before it subscribed), which Redis alone cannot
 * give: its SUBSCRIBE is confirmed on another connection than the PUBLISH.
 */
export function createRedisChannels(
  options: {
    /** Put before every channel's name on the server: see `createRedisState`. */
    readonly channelPrefix: string
  },
  deps: {
    /** Sends PUBLISH. */
    readonly client: Redis
    /** In subscriber mode once it subscribes; its SUBSCRIBE waits for the connection. */
    readonly subscriber: Redis
    readonly onError: (error: unknown) => void
    readonly onHandlerError: (error: unknown, channel: string) => void
  },
): Pick<StateStore, 'publish' | 'subscribe'> & { close(): void } {
  const { channelPrefix } = options
  const { client, subscriber, onError, onHandlerError } = deps
  const senderId = randomUUID()
  const channels = new Map<string, Set<Subscription>>()
  let isClosed = false

  subscriber.on('message', (fullChannel: string, framed: string) => {
    if (framed.startsWith(senderId)) return
    const subscriptions = channels.get(fullChannel)
    if (subscriptions === undefined) return
    const channel = fullChannel.slice(channelPrefix.length)
    // A message sent by hand (redis-cli PUBLISH) has no sender id: cutting 36 characters off it
    // would hand the subscribers a fragment.
    if (!SENDER_ID.test(framed)) {
      onError(
        new Error(
          `dropped a message on state channel ${JSON.stringify(channel)} that no Aya sent (it does not start with a sender id): ${JSON.stringify(framed.slice(0, 80))}`,
        ),
      )
      return
    }
    deliver([...subscriptions], channel, framed.slice(senderId.length), onHandlerError)
  })

  return {
    async publish(channel, message) {
      const fullChannel = channelPrefix + channel
      const local = channels.get(fullChannel)
      if (local !== undefined && local.size > 0) {
        // Snapshot now: a handler subscribed after this publish must not receive it.
        const snapshot = [...local]
        queueMicrotask(() => deliver(snapshot, channel, message, onHandlerError))
      }
      await client.publish(fullChannel, senderId + message)
    },

    subscribe(channel, handler) {
      const fullChannel = channelPrefix + channel
      const subscription: Subscription = { handler, active: true }
      let subscriptions = channels.get(fullChannel)
      if (subscriptions === undefined) {
        subscriptions = new Set()
        channels.set(fullChannel, subscriptions)
        subscriber.subscribe(fullChannel).catch(onError)
      }
      subscriptions.add(subscription)
      return () => {
        if (!subscription.active) return
        subscription.active = false
        const current = channels.get(fullChannel)
        if (current === undefined) return
        current.delete(subscription)
        if (current.size > 0 || isClosed) return
        channels.delete(fullChannel)
        subscriber.unsubscribe(fullChannel).catch(onError)
      }
    },

    close() {
      isClosed = true
      for (const subscriptions of channels.values()) {
        for (const subscription of subscriptions) subscription.active = false
      }
      channels.clear()
    },
  }
}
