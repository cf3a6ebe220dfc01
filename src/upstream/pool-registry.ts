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

/** The registry's key for the pool of `origin` with `options`: one Pool per key. */
export function poolKeyOf(origin: string, options: PoolOptions): string {
  return `${origin}|${options.connectTimeoutMs}|${options.maxConnections}|${options.purpose ?? ''}`
}

/**
 * One undici keep-alive Pool per endpoint origin and pool settings (connect timeout and size are
 * pool settings). Pools survive config reloads while the config still asks for them, so warm
 * connections are kept.
 */
export interface PoolRegistry {
  get(origin: string, options: PoolOptions): Pool
  /**
   * The config now asks for the pools in `keep` (keys from `poolKeyOf`) alone: the others close
   * after their in-flight requests finish. A request that was already on its way under the old
   * config (waiting in a queue or held by a pacer) may still ask for one of those: it gets a pool
   * that closes once its last connection does, rather than one that lives until shutdown.
   */
  retain(keep: ReadonlySet<string>): Promise<void>
  /** Pools open now (for tests and diagnostics). */
  readonly size: number
  close(): Promise<void>
}

export function createPoolRegistry(): PoolRegistry {
  const pools = new Map<string, Pool>()
  // Undefined until the first reload: until then every pool asked for is one the config wants.
  let wanted: ReadonlySet<string> | undefined
  const isUnwanted = (key: string) => wanted !== undefined && !wanted.has(key)
  const closeIfIdle = (key: string, pool: Pool) => {
    if (!isUnwanted(key) || pool.closed || pool.stats.connected > 0) return
    if (pools.get(key) === pool) pools.delete(key)
    // Graceful: a request queued on it still runs, on a connection of its own.
    void pool.close().catch(() => {})
  }
  return {
    get(origin, options) {
      const key = poolKeyOf(origin, options)
      let pool = pools.get(key)
      if (!pool) {
        pool = new Pool(origin, {
          connections: options.maxConnections,
          pipelining: 1,
          connectTimeout: options.connectTimeoutMs,
          // Below the 5 s after which uvicorn (vLLM, SGLang) closes an idle connection without
          // saying so in a Keep-Alive header: a request sent on a connection the server is
          // closing fails as a reset, after it may have been read, so only an idempotent one is
          // sent again (see canRetry), and never an LLM generation.
          keepAliveTimeout: 4_000,
          keepAliveMaxTimeout: 600_000,
          // Timeouts are set per request from the route; these are only the pool's ceilings.
          headersTimeout: 0,
          bodyTimeout: 0,
        })
        const created = pool
        const onIdle = () => closeIfIdle(key, created)
        created.on('disconnect', onIdle)
        created.on('connectionError', onIdle)
        pools.set(key, pool)
      }
      return pool
    },
    async retain(keep) {
      wanted = keep
      const closing: Promise<void>[] = []
      for (const [key, pool] of pools) {
        if (keep.has(key)) continue
        pools.delete(key)
        closing.push(pool.close())
      }
      await Promise.all(closing)
    },
    get size() {
      return pools.size
    },
    async close() {
      const all = [...pools.values()].map((pool) => pool.destroy())
      pools.clear()
      await Promise.allSettled(all)
    },
  }
}
