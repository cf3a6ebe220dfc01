import { Pool } from 'undici'

export interface PoolOptions {
  readonly connectTimeoutMs: number
  readonly maxConnections: number
  /**
   * Pools with different purposes never share connections: mirrored traffic (`'shadow'`) gets
   * pools of its own, so a slow shadow cannot hold the connections the primary needs.
   */
  readonly purpose?: 'shadow'
}

/**
 * One undici keep-alive Pool per endpoint origin (and connect timeout, which is a pool setting).
 * Pools survive config reloads while their endpoint does, so warm connections are kept.
 */
export interface PoolRegistry {
  get(origin: string, options: PoolOptions): Pool
  /** Closes pools whose origin is not in `keep`, after their in-flight requests finish. */
  retain(keep: ReadonlySet<string>): Promise<void>
  close(): Promise<void>
}

export function createPoolRegistry(): PoolRegistry {
  const pools = new Map<string, { readonly origin: string; readonly pool: Pool }>()
  return {
    get(origin, options) {
      const key = `${origin}|${options.connectTimeoutMs}|${options.maxConnections}|${options.purpose ?? ''}`
      let entry = pools.get(key)
      if (!entry) {
        entry = {
          origin,
          pool: new Pool(origin, {
            connections: options.maxConnections,
            pipelining: 1,
            connectTimeout: options.connectTimeoutMs,
            // Below the 5 s after which uvicorn (vLLM, SGLang) closes an idle connection without
            // saying so in a Keep-Alive header: a request sent on a connection the server is
            // closing fails as a reset, after it may have been read, so it cannot be retried.
            keepAliveTimeout: 4_000,
            keepAliveMaxTimeout: 600_000,
            // Timeouts are set per request from the route; these are only the pool's ceilings.
            headersTimeout: 0,
            bodyTimeout: 0,
          }),
        }
        pools.set(key, entry)
      }
      return entry.pool
    },
    async retain(keep) {
      const closing: Promise<void>[] = []
      for (const [key, entry] of pools) {
        if (keep.has(entry.origin)) continue
        pools.delete(key)
        closing.push(entry.pool.close())
      }
      await Promise.all(closing)
    },
    async close() {
      const all = [...pools.values()].map((entry) => entry.pool.destroy())
      pools.clear()
      await Promise.allSettled(all)
    },
  }
}
