import { createHash } from 'node:crypto'
import type { StateStore } from '../state/state-store.ts'
import type { KeySource } from './key-selector.ts'

/**
 * Session affinity: how a request finds the endpoint it is bound to, and how a new binding is
 * recorded. `bind` returns a Set-Cookie value when the binding travels with the client.
 */
export interface StickyBinding {
  lookup(source: KeySource): Promise<string | undefined>
  bind(
    source: KeySource,
    endpointId: string,
    current: string | undefined,
  ): Promise<string | undefined>
}

export interface StickyHeaderOptions {
  readonly upstream: string
  readonly header: string
  readonly ttlMs: number
}

/**
 * Header affinity (`sticky: { header: x-session-id }`): the session id maps to an endpoint in the
 * shared state store with a TTL, so every worker and replica that shares the store agrees.
 */
export function createStickyHeader(
  options: StickyHeaderOptions,
  deps: {
    readonly state: StateStore
    /** A lookup or bind the store failed (Redis down or slow): told, and the request goes on. */
    readonly onError?: ((error: unknown) => void) | undefined
  },
): StickyBinding {
  const header = options.header.toLowerCase()
  const keyFor = (source: KeySource): string | undefined => {
    const raw = source.headers[header]
    const value = Array.isArray(raw) ? raw[0] : raw
    if (value === undefined || value === '') return undefined
    const digest = createHash('sha256').update(value).digest('base64url').slice(0, 22)
    return `sticky:${options.upstream}:${digest}`
  }
  // A binding is a preference: with the shared store unreachable (Redis down or slow) the request
  // goes by the policy alone, unbound, rather than failing.
  return {
    async lookup(source) {
      const key = keyFor(source)
      if (key === undefined) return undefined
      try {
        // Each use restarts the TTL: a session lives ttlMs past its last request, not its first.
        return await deps.state.getAndTouch(key, options.ttlMs)
      } catch (error) {
        deps.onError?.(error)
        return undefined
      }
    },
    async bind(source, endpointId, current) {
      const key = keyFor(source)
      if (key === undefined || current === endpointId) return undefined
      // Not awaited: the request goes on while the binding is written, so a stalled store costs
      // it one command timeout (the lookup's), not two. A failed write leaves the session
      // unbound: its next request is placed afresh. A session bound nowhere yet keeps the first
      // binding any replica writes: replicas racing on a new session's first requests (parallel
      // tool calls) all follow that one, instead of the last writer's. A binding to an endpoint
      // that is gone is replaced.
      const write =
        current === undefined
          ? deps.state.setIfAbsent(key, endpointId, options.ttlMs)
          : deps.state.set(key, endpointId, options.ttlMs)
      write.catch((error) => deps.onError?.(error))
      return undefined
    },
  }
}
