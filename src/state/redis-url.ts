/** Where and how to connect, as ioredis takes it. */
export interface RedisConnection {
  readonly host?: string
  readonly port?: number
  readonly db?: number
  readonly username?: string
  readonly password?: string
  readonly tls?: Record<string, never>
  readonly path?: string
}

/** The URL as it may be printed: the password left out. */
export function redactedRedisUrl(url: string): string {
  if (!URL.canParse(url)) return '(not a URL)'
  const parsed = new URL(url)
  if (parsed.password) parsed.password = '***'
  return parsed.toString()
}

/** ioredis connection options from a `redis://`, `rediss://` or `unix://` URL. */
export function redisConnectionOptions(url: string): RedisConnection {
  if (!URL.canParse(url)) throw new RangeError('expected a redis://, rediss:// or unix:// URL')
  const parsed = new URL(url)
  if (parsed.protocol === 'unix:') return { path: decodeURIComponent(parsed.pathname) }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RangeError(
      `expected a redis://, rediss:// or unix:// URL, got ${redactedRedisUrl(url)}`,
    )
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) {
    throw new RangeError(`bad database number in ${redactedRedisUrl(url)}`)
  }
  return {
    // An IPv6 host comes bracketed ([::1]); the socket wants the bare address.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}
