import { randomUUID } from 'node:crypto'
import type { StateStore } from './state-store.ts'

/**
 * One pub/sub channel between router replicas: each message is framed with its sender's id, so a
 * replica skips its own (which a store also delivers to local subscribers) without parsing it, and
 * a receiver can tell the senders apart.
 */
export interface PeerChannel {
  /** Publishes `message` as JSON; a failed publish is told to `onError`, never thrown. */
  send(message: unknown): void
  /**
   * Hears the other replicas' messages, parsed; text that is not JSON from a replica, or longer
   * than `maxMessageChars`, is told to `onError` and dropped. Returns the unsubscribe.
   */
  listen(handler: (message: unknown, sender: string) => void): () => void
}

export function createPeerChannel(
  options: {
    readonly channel: string
    /** Longest message heard, in characters: anything longer is dropped before it is parsed. */
    readonly maxMessageChars: number
    /** Names the messages in errors: "prefix announcement". */
    readonly what: string
  },
  deps: { readonly state: StateStore; readonly onError: (error: unknown) => void },
): PeerChannel {
  const self = randomUUID()
  const frame = `${self}\n`
  return {
    send(message) {
      deps.state.publish(options.channel, frame + JSON.stringify(message)).catch(deps.onError)
    },
    listen(handler) {
      return deps.state.subscribe(options.channel, (framed) => {
        if (framed.startsWith(frame)) return
        const newline = framed.indexOf('\n')
        let message: unknown
        if (newline !== -1 && framed.length <= options.maxMessageChars) {
          try {
            message = JSON.parse(framed.slice(newline + 1))
          } catch {
            message = undefined
          }
        }
        if (message === undefined) {
          deps.onError(
            new Error(`ignored a ${options.what} that is not one: ${framed.slice(0, 80)}`),
          )
          return
        }
        handler(message, framed.slice(0, newline))
      })
    },
  }
}
