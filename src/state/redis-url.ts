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
  if (
    parsed.protocol !== 'redis:' &&
    parsed.protocol !== 'rediss:' &&
    parsed.protocol !== 'unix:'
  ) {
    throw new RangeError(
      `expected a redis://, rediss:// or unix:// URL, got ${redactedRedisUrl(url)}`,
    )
  }
  const db = databaseOf(parsed)
  if (parsed.protocol === 'unix:') {
    // `unix://run/redis.sock` reads `run` as a host and the socket as `/redis.sock`.
    if (parsed.host !== '') {
      throw new RangeError(
        'a unix:// URL takes an absolute path after its two slashes (unix:///run/redis.sock)',
      )
    }
    return { path: decodeURIComponent(parsed.pathname), ...(db === undefined ? {} : { db }) }
  }
  return {
    // An IPv6 host comes bracketed ([::1]); the socket wants the bare address.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    db: db ?? 0,
    ...(parsed.username ? { username: decoded(parsed.username, 'user name') } : {}),
    ...(parsed.password ? { password: decoded(parsed.password, 'password') } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

/**
 * The database a URL names: its path (`redis://host/2`, not for a socket, whose path is the
 * file's) or `?db=2`, as ioredis and redis-py read it. Any other query parameter is refused, not
 * dropped: a `?password=` or a `?db=` on a socket left unread would connect without the password,
 * or to database 0, where another deployment's keys may be.
 */
function databaseOf(parsed: URL): number | undefined {
  let db: number | undefined
  if (parsed.protocol !== 'unix:' && parsed.pathname.length > 1) {
    db = databaseNumber(parsed.pathname.slice(1))
  }
  for (const [name, value] of parsed.searchParams) {
    if (name !== 'db') {
      throw new RangeError(
        `the query parameter ${JSON.stringify(name)} is not read: only db is (credentials go before the host, redis://user:pass@host)`,
      )
    }
    const fromQuery = databaseNumber(value)
    if (db !== undefined && db !== fromQuery) {
      throw new RangeError(`names database ${db} in its path and ${fromQuery} in its query`)
    }
    db = fromQuery
  }
  return db
}

function databaseNumber(text: string): number {
  if (!/^\d{1,9}$/.test(text)) {
    throw new RangeError(`bad database number ${JSON.stringify(text)}: expected a whole number`)
  }
  return Number(text)
}

/** A user name or password, percent-decoded; the text itself never goes into the error. */
function decoded(text: string, what: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new RangeError(`the ${what} is not percent-encoded (a % in it is written %25)`)
  }
}
