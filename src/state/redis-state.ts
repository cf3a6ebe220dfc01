import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Clock } from '../util/clock.ts'
import type { BucketResult, BucketSpec, StateStore } from './state-store.ts'
import { deliver, type Subscription } from './subscription.ts'
import { retryAfterMs, validateBucket } from './token-bucket.ts'

export interface RedisStateOptions {
  /** `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), or `unix:///path/to/redis.sock`. */
  readonly url: string
  /** Put before every key and channel, so several Aya deployments can share one Redis. */
  readonly keyPrefix?: string
  /** A command unanswered after this fails, so a stalled Redis never stalls a request. */
  readonly commandTimeoutMs?: number
}

export interface RedisStateDeps {
  /**
   * Token buckets refill on this clock's wall time (`wallNow`), so replicas need the same wall
   * time (NTP); a bucket's stamp never moves back, so a replica whose clock lags never refills
   * one twice.
   */
  readonly clock: Clock
  /** A lost connection, a failed subscribe: told, never thrown, since callers cannot act on it. */
  readonly onError?: (error: unknown) => void
  /** A subscriber that threw; delivery to the others goes on. */
  readonly onHandlerError?: (error: unknown, channel: string) => void
}

// Counters are floats (INCRBYFLOAT) to match the in-process store; the TTL is set only by the
// call that created the key, so fixed windows never slide.
const INCR_SCRIPT = `
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value`

// The arithmetic of token-bucket.ts (refilledTokens, takeFromBucket), in the same order of
// floating-point operations, so both stores give the same answers. A full bucket is deleted
// (it equals a missing one) and a partial one expires when it would be full again. Numbers go
// back as %.17g strings: Redis would truncate a Lua number reply to an integer.
const TAKE_SCRIPT = `
local held = redis.call('HMGET', KEYS[1], 't', 'u')
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local tokens = capacity
local stamp = now
if held[1] then
  tokens = math.min(tonumber(held[1]), capacity)
  local elapsed = now - tonumber(held[2])
  if elapsed > 0 then
    tokens = math.min(capacity, tokens + (elapsed * refill) / 1000)
  else
    stamp = tonumber(held[2])
  end
end
local allowed = 0
if cost <= tokens then
  tokens = tokens - cost
  allowed = 1
end
if tokens >= capacity then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', stamp))
  local untilFull = refill > 0 and math.ceil(((capacity - tokens) * 1000) / refill) or math.huge
  if untilFull < 1e15 then
    redis.call('PEXPIRE', KEYS[1], untilFull)
  else
    redis.call('PERSIST', KEYS[1])
  end
end
return { allowed, string.format('%.17g', tokens) }`

interface ScriptedRedis extends Redis {
  ayaIncr(key: string, delta: string, ttlMs: string): Promise<string>
  ayaTake(
    key: string,
    capacity: string,
    refill: string,
    cost: string,
    nowMs: string,
  ): Promise<[number, string]>
}

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

/**
 * The StateStore on a Redis server, shared by every Aya instance that points at it: counters,
 * values and buckets are Redis keys, changed atomically by single commands or Lua scripts, and
 * pub/sub is Redis pub/sub.
 *
 * A message is delivered to this instance's own subscribers at once, in process, and reaches
 * other instances through Redis; each message carries its sender's id so an instance skips its
 * own echo. That keeps the contract's ordering for local subscribers (a handler never receives a
 * message published before it subscribed), which Redis alone cannot give: its SUBSCRIBE is
 * confirmed on another connection than the PUBLISH.
 */
export function createRedisState(options: RedisStateOptions, deps: RedisStateDeps): StateStore {
  const keyPrefix = options.keyPrefix ?? 'aya:'
  const onError = deps.onError ?? (() => {})
  const onHandlerError = deps.onHandlerError ?? (() => {})
  const connection = redisConnectionOptions(options.url)
  const client = new Redis({
    ...connection,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    maxRetriesPerRequest: 1,
  }) as ScriptedRedis
  // Commands wait for the first connection, so a replica that starts a moment before Redis loses
  // nothing. Once connected, a command sent while the connection is down fails at once: a request
  // must not wait behind an outage for state it can do without (a sticky binding, a prefix
  // announcement). ioredis reads the option at each send.
  client.once('ready', () => {
    client.options.enableOfflineQueue = false
  })
  client.defineCommand('ayaIncr', { numberOfKeys: 1, lua: INCR_SCRIPT })
  client.defineCommand('ayaTake', { numberOfKeys: 1, lua: TAKE_SCRIPT })
  // The subscriber connection waits for messages indefinitely, and a SUBSCRIBE sent while Redis
  // is unreachable waits for it: ioredis re-subscribes only to channels it saw confirmed, so a
  // failed one would never be heard again.
  const subscriber = new Redis({ ...connection, maxRetriesPerRequest: null })
  client.on('error', onError)
  subscriber.on('error', onError)

  const senderId = randomUUID()
  const channels = new Map<string, Set<Subscription>>()
  let isClosed = false

  const assertOpen = () => {
    if (isClosed) throw new Error('state store is closed')
  }
  const ttlArgument = (ttlMs: number | undefined): number | undefined => {
    if (ttlMs === undefined) return undefined
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
      throw new RangeError(`ttlMs must be a positive finite number, got ${ttlMs}`)
    }
    return Math.ceil(ttlMs)
  }

  subscriber.on('message', (fullChannel: string, framed: string) => {
    if (framed.startsWith(senderId)) return
    const subscriptions = channels.get(fullChannel)
    if (subscriptions === undefined) return
    deliver(
      [...subscriptions],
      fullChannel.slice(keyPrefix.length),
      framed.slice(senderId.length),
      onHandlerError,
    )
  })

  return {
    kind: 'redis',

    async incr(key, delta = 1, ttlMs) {
      assertOpen()
      if (!Number.isFinite(delta)) throw new RangeError(`delta must be finite, got ${delta}`)
      const ttl = ttlArgument(ttlMs)
      const value = await client.ayaIncr(keyPrefix + key, String(delta), ttl?.toString() ?? '')
      return Number(value)
    },

    async get(key) {
      assertOpen()
      return (await client.get(keyPrefix + key)) ?? undefined
    },

    async set(key, value, ttlMs) {
      assertOpen()
      const ttl = ttlArgument(ttlMs)
      if (ttl === undefined) await client.set(keyPrefix + key, value)
      else await client.set(keyPrefix + key, value, 'PX', ttl)
    },

    async setIfAbsent(key, value, ttlMs) {
      assertOpen()
      const ttl = ttlArgument(ttlMs)
      const stored =
        ttl === undefined
          ? await client.set(keyPrefix + key, value, 'NX')
          : await client.set(keyPrefix + key, value, 'PX', ttl, 'NX')
      return stored === 'OK'
    },

    async delete(key) {
      assertOpen()
      return (await client.del(keyPrefix + key)) > 0
    },

    async take(key: string, bucket: BucketSpec, cost = 1): Promise<BucketResult> {
      assertOpen()
      validateBucket(bucket, cost)
      const [allowed, tokensText] = await client.ayaTake(
        keyPrefix + key,
        String(bucket.capacity),
        String(bucket.refillPerSecond),
        String(cost),
        String(deps.clock.wallNow()),
      )
      const tokens = Number(tokensText)
      if (allowed === 1) return { allowed: true, remaining: tokens, retryAfterMs: 0 }
      return { allowed: false, remaining: tokens, retryAfterMs: retryAfterMs(tokens, bucket, cost) }
    },

    async publish(channel, message) {
      assertOpen()
      const fullChannel = keyPrefix + channel
      const local = channels.get(fullChannel)
      if (local !== undefined && local.size > 0) {
        // Snapshot now: a handler subscribed after this publish must not receive it.
        const snapshot = [...local]
        queueMicrotask(() => deliver(snapshot, channel, message, onHandlerError))
      }
      await client.publish(fullChannel, senderId + message)
    },

    subscribe(channel, handler) {
      assertOpen()
      const fullChannel = keyPrefix + channel
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

    async close() {
      if (isClosed) return
      isClosed = true
      for (const subscriptions of channels.values()) {
        for (const subscription of subscriptions) subscription.active = false
      }
      channels.clear()
      await Promise.all([quit(client), quit(subscriber)])
    },
  }
}

/** Closes gracefully when connected; drops the connection at once when it is not. */
async function quit(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  try {
    await redis.quit()
  } catch {
    redis.disconnect()
  }
}
