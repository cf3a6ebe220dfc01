import { createPeerChannel } from '../state/peer-channel.ts'
import type { StateStore } from '../state/state-store.ts'

/** What one router tells the others about an endpoint's prefix blocks. */
export interface PrefixPeerListener {
  /** The endpoint was sent a prompt with these block hashes; `capacityBlocks` sizes its index. */
  added(endpointId: string, hashes: readonly number[], capacityBlocks: number): void
  /** An optimistic insert taken back: the endpoint never got the prompt from this block on. */
  removed(endpointId: string, hash: number): void
}

/**
 * The prefix index shared between router replicas (llm-d's routers share theirs through KV
 * events; a router fleet without it splits every conversation's hits). Each router announces its
 * optimistic inserts and take-backs on the shared state's pub/sub, and applies the others'
 * announcements to its own index, so a prompt sent through one router is warm for them all.
 */
export interface PrefixPeers {
  announceAdded(endpointId: string, hashes: readonly number[], capacityBlocks: number): void
  announceRemoved(endpointId: string, hash: number): void
  /** Hears the other routers' announcements (never this router's own); returns the unsubscribe. */
  listen(listener: PrefixPeerListener): () => void
}

interface AddedMessage {
  readonly op: 'add'
  readonly endpoint: string
  readonly capacityBlocks: number
  /** The block hashes as little-endian float64s in base64: 53-bit hashes are exact doubles. */
  readonly blocks: string
}

interface RemovedMessage {
  readonly op: 'remove'
  readonly endpoint: string
  readonly hash: number
}

export function encodeBlocks(hashes: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(hashes.length * 8)
  for (let i = 0; i < hashes.length; i++) bytes.writeDoubleLE(hashes[i]!, i * 8)
  return bytes.toString('base64')
}

export function decodeBlocks(text: string): number[] | undefined {
  const bytes = Buffer.from(text, 'base64')
  if (bytes.length % 8 !== 0) return undefined
  const hashes: number[] = []
  for (let offset = 0; offset < bytes.length; offset += 8) {
    const hash = bytes.readDoubleLE(offset)
    if (!Number.isSafeInteger(hash)) return undefined
    hashes.push(hash)
  }
  return hashes
}

/**
 * Longest announcement heard, in characters: 16,384 blocks (a 1M-character prompt) is about
 * 175 KB. Anything longer is not from a router and is dropped before it is parsed.
 */
const MAX_MESSAGE_CHARS = 256 * 1024

export function createPrefixPeers(
  options: {
    /** One channel per upstream group: its endpoint ids mean the same servers to every router. */
    readonly channel: string
  },
  deps: {
    readonly state: StateStore
    /** A publish that failed or a message that made no sense: told, never thrown. */
    readonly onError?: (error: unknown) => void
  },
): PrefixPeers {
  const onError = deps.onError ?? (() => {})
  const peers = createPeerChannel(
    { channel: options.channel, maxMessageChars: MAX_MESSAGE_CHARS, what: 'prefix announcement' },
    { state: deps.state, onError },
  )
  const send = (message: AddedMessage | RemovedMessage) => peers.send(message)
  return {
    announceAdded(endpoint, hashes, capacityBlocks) {
      if (hashes.length === 0) return
      send({ op: 'add', endpoint, capacityBlocks, blocks: encodeBlocks(hashes) })
    },
    announceRemoved(endpoint, hash) {
      send({ op: 'remove', endpoint, hash })
    },
    listen(listener) {
      return peers.listen((value) => {
        const message = parseMessage(value)
        if (message === undefined) {
          onError(new Error('ignored a prefix announcement that is not one'))
          return
        }
        if (message.op === 'remove') {
          listener.removed(message.endpoint, message.hash)
          return
        }
        const hashes = decodeBlocks(message.blocks)
        if (hashes === undefined) {
          onError(new Error('ignored a prefix announcement with malformed blocks'))
          return
        }
        listener.added(message.endpoint, hashes, message.capacityBlocks)
      })
    },
  }
}

function parseMessage(value: unknown): AddedMessage | RemovedMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const message = value as Record<string, unknown>
  if (typeof message.endpoint !== 'string') return undefined
  if (message.op === 'remove' && Number.isSafeInteger(message.hash)) {
    return message as unknown as RemovedMessage
  }
  if (
    message.op === 'add' &&
    typeof message.blocks === 'string' &&
    Number.isSafeInteger(message.capacityBlocks) &&
    (message.capacityBlocks as number) >= 1
  ) {
    return message as unknown as AddedMessage
  }
  return undefined
}
