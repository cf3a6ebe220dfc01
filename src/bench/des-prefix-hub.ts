import type { PrefixPeerListener, PrefixPeers } from '../llm/prefix-peers.ts'
import type { Clock } from '../util/clock.ts'

/**
 * The shared state's prefix announcements between DES routers (`--shared-state`), in virtual
 * time: each announcement reaches every other router `delayMs` later, as Redis pub/sub would
 * (its round trip is well under a millisecond on a LAN). The DES runs its events in one
 * synchronous loop, so the StateStore's own pub/sub, which delivers on a microtask, would not
 * deliver until the replay ended.
 */
export interface DesPrefixHub {
  /** The PrefixPeers of one more router. */
  join(): PrefixPeers
}

export function createDesPrefixHub(
  options: { readonly delayMs: number },
  deps: { readonly clock: Clock },
): DesPrefixHub {
  const members: Array<{ listeners: Set<PrefixPeerListener> }> = []
  const toOthers = (from: number, deliver: (listener: PrefixPeerListener) => void) => {
    deps.clock.setTimer(options.delayMs, () => {
      for (const [i, member] of members.entries()) {
        if (i === from) continue
        for (const listener of member.listeners) deliver(listener)
      }
    })
  }
  return {
    join() {
      const self = members.length
      const listeners = new Set<PrefixPeerListener>()
      members.push({ listeners })
      return {
        announceAdded(endpointId, hashes, capacityBlocks) {
          if (hashes.length === 0) return
          const copy = hashes.slice()
          toOthers(self, (listener) => listener.added(endpointId, copy, capacityBlocks))
        },
        announceRemoved(endpointId, hash) {
          toOthers(self, (listener) => listener.removed(endpointId, hash))
        },
        listen(listener) {
          listeners.add(listener)
          return () => listeners.delete(listener)
        },
      }
    },
  }
}
