import { Redis } from 'ioredis'
import type { Clock, Timer } from '../util/clock.ts'
import { checkDelta, checkTtlMs } from './call-arguments.ts'
import { createRedisChannels } from './redis-channels.ts'
import { startRedisHeartbeat } from './redis-heartbeat.ts'
import { redactedRedisUrl, redisConnectionOptions } from './redis-url.ts'
import type { BucketResult, BucketSpec, StateStore } from './state-store.ts'
import { retryAfterMs, validateBucket } from './token-bucket.ts'

export interface RedisStateOptions {
  /** `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), or `unix:///path/to/redis.sock`. */
  readonly url: string
  /** Put before every key and channel, so several Aya deployments can share one Redis. */
  readonly keyPrefix?: string
  /**
   * A command unanswered after this fails, so a stalled Redis never stalls a request; a connection
   * (the subscriber's too) whose command or heartbeat PING hears nothing for as long is dropped,
   * and the store reads down until it is back.
   */
  readonly commandTimeoutMs?: number
}

export interface RedisStateDeps {
  /**
   * Token buckets refill on this clock's wall time (`wallNow`), so replicas need the same wall
   * time (NTP); a bucket's stamp never moves back, so a replica whose clock lags never refills
   * one twice. Its timers pace the heartbeat PING.
   */
  readonly clock: Clock
  /**
   * A lost connection, a failed subscribe, a message on a channel that no Aya sent: told, never
   * thrown, since callers cannot act on it.
   */
  readonly onError?: (error: unknown) => void
  /** A subscriber that threw; delivery to the others goes on. */
  readonly onHandlerError?: (error: unknown, channel: string) => void
  /**
   * Both connections are ready again after one was lost or a first attempt failed: the outage's
   * errors are throttled, so without this an operator reading logs sees errors, then silence.
   */
  readonly onReconnect?: () => void
}

// Counters are floats (INCRBYFLOAT) to match the in-process store; the TTL is set only by the
// call that created the key, so fixed windows never slide.
const INCR_SCRIPT = `
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value`

// GETEX needs Redis 6.2: a script gives the same one round trip on any Redis Aya runs on.
const GET_AND_TOUCH_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if value then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
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
  ayaGetAndTouch(key: string, ttlMs: string): Promise<string | null>
  ayaTake(
    key: string,
    capacity: string,
    refill: string,
    cost: string,
    nowMs: string,
  ): Promise<[number, string]>
}

/**
 * The StateStore on a Redis server, shared by every Aya instance that points at it: counters,
 * values and buckets are Redis keys, changed atomically by single commands or Lua scripts, and
 * pub/sub is Redis pub/sub (`redis-channels.ts`).
 */
export function createRedisState(options: RedisStateOptions, deps: RedisStateDeps): StateStore {
  const keyPrefix = options.keyPrefix ?? 'aya:'
  const onError = deps.onError ?? (() => {})
  const onHandlerError = deps.onHandlerError ?? (() => {})
  const connection = redisConnectionOptions(options.url)
  const commandTimeoutMs = options.commandTimeoutMs ?? 1000
  const client = new Redis({
    ...connection,
    commandTimeout: commandTimeoutMs,
    // A paused or wedged Redis keeps its socket open: the command timeout alone would fail each
    // command after commandTimeoutMs while the connection read as ready, so every request paid
    // that wait and `aya_state_store_up` said 1. Nothing heard for as long drops the connection
    // instead; until a reconnect completes its handshake, commands fail at once (below).
    socketTimeout: commandTimeoutMs,
    // What the dropped connection left unanswered may have run on the server already (it runs what
    // it read once it resumes), and its caller was told it failed: sent again, an incr or a take
    // would count twice.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
  }) as ScriptedRedis
  // Commands wait for the first connection, so a replica that starts a moment before Redis loses
  // little. Once connected, once two attempts have failed (Redis is down, or refuses the
  // password), or once `commandTimeoutMs` has passed, a command sent while the connection is down
  // fails at once: a request must not wait behind an outage for state it can do without (a sticky
  // binding, a prefix announcement). The time bound is for a first connection that neither
  // completes nor fails (a host whose packets are dropped, a TLS handshake a plain Redis never
  // answers): ioredis gives each attempt 10 s, and until two had failed every sticky lookup waited
  // its whole command timeout. ioredis reads the option at each send, and drops what it queued at
  // the second failed attempt.
  let startGrace: Timer | undefined
  const failFast = () => {
    client.options.enableOfflineQueue = false
    startGrace?.clear()
    startGrace = undefined
  }
  startGrace = deps.clock.setTimer(commandTimeoutMs, failFast)
  client.once('ready', failFast)
  let failedAttempts = 0
  client.on('reconnecting', () => {
    if (++failedAttempts === 2) failFast()
  })
  client.defineCommand('ayaIncr', { numberOfKeys: 1, lua: INCR_SCRIPT })
  client.defineCommand('ayaTake', { numberOfKeys: 1, lua: TAKE_SCRIPT })
  client.defineCommand('ayaGetAndTouch', { numberOfKeys: 1, lua: GET_AND_TOUCH_SCRIPT })
  // A SUBSCRIBE sent while Redis is unreachable waits for it: ioredis re-subscribes only to
  // channels it saw confirmed, so a failed one would never be heard again. What a dropped
  // connection left unanswered (a SUBSCRIBE, a PING) is sent again on the next, so no channel is
  // lost in between.
  const subscriber = new Redis({
    ...connection,
    maxRetriesPerRequest: null,
    // A subscriber only listens, so a connection the server or a middlebox forgot (an expired NAT
    // entry, a failover behind a virtual IP, a CLIENT KILL whose FIN was lost) would stay open
    // and silent until TCP keepalive gave up, and the replica would stop hearing its peers while
    // the store read up. The heartbeat's PING (valid in subscriber mode) is what it waits on.
    socketTimeout: commandTimeoutMs,
  })
  // With no requests, a stalled Redis would go unnoticed, and a subscriber never sends anything of
  // its own: a PING on each connection every commandTimeoutMs lets its socket timeout find a
  // stall, so the store reads down within two commandTimeoutMs, traffic or not.
  const stopHeartbeats = [client, subscriber].map((redis) =>
    startRedisHeartbeat(redis, { intervalMs: commandTimeoutMs }, { clock: deps.clock }),
  )
  // Both connections up, and not closed: what the store reads as connected.
  const isUp = () => !isClosed && client.status === 'ready' && subscriber.status === 'ready'
  // A connection that closed (lost, or a first attempt that failed) marks an outage; both
  // connections ready again end it. A close after `close()` is no outage.
  let isDown = false
  for (const redis of [client, subscriber]) {
    redis.on('close', () => {
      if (!isClosed) isDown = true
    })
    redis.on('ready', () => {
      if (!isDown || !isUp()) return
      isDown = false
      deps.onReconnect?.()
    })
    redis.on('error', (error) => {
      if (!isFailedSelect(error)) return onError(error)
      // ioredis only reports a refused SELECT and goes on to ready on database 0, where this
      // deployment's keys would mix with another's. Dropping the connection before its ready
      // check makes it a failed connection, as a refused password is: the store stays down and
      // ioredis retries, in case the server is given more databases.
      redis.disconnect(true)
      onError(
        new Error(
          `state.url ${redactedRedisUrl(options.url)} names database ${connection.db}, which the Redis server refused (${error.message}); the store stays down until it can select it`,
          { cause: error },
        ),
      )
    })
  }

  // Redis pub/sub ignores the database: a deployment on database 2 would hear one on database 1
  // that kept the default prefix, and count its replicas' work on endpoints of the same ids (a
  // Kubernetes service name in two namespaces) as its own fleet's. Channels of a database other
  // than 0 carry its number; database 0's keep their names, so replicas of before still hear them.
  const channelPrefix = connection.db ? `${keyPrefix}db${connection.db}:` : keyPrefix
  const channels = createRedisChannels(
    { channelPrefix },
    { client, subscriber, onError, onHandlerError },
  )
  let isClosed = false

  const assertOpen = () => {
    if (isClosed) throw new Error('state store is closed')
  }
  /** Whole milliseconds, as PX takes them. */
  const ttlArgument = (ttlMs: number | undefined): number | undefined => {
    checkTtlMs(ttlMs)
    return ttlMs === undefined ? undefined : Math.ceil(ttlMs)
  }

  return {
    kind: 'redis',
    get connected() {
      return isUp()
    },

    async incr(key, delta = 1, ttlMs) {
      assertOpen()
      checkDelta(delta)
      const ttl = ttlArgument(ttlMs)
      const value = await client.ayaIncr(keyPrefix + key, String(delta), ttl?.toString() ?? '')
      return Number(value)
    },

    async get(key) {
      assertOpen()
      return (await client.get(keyPrefix + key)) ?? undefined
    },

    async getAndTouch(key, ttlMs) {
      assertOpen()
      const ttl = ttlArgument(ttlMs)
      return (await client.ayaGetAndTouch(keyPrefix + key, String(ttl))) ?? undefined
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
      await channels.publish(channel, message)
    },

    subscribe(channel, handler) {
      assertOpen()
      return channels.subscribe(channel, handler)
    },

    async close() {
      if (isClosed) return
      isClosed = true
      startGrace?.clear()
      for (const stopHeartbeat of stopHeartbeats) stopHeartbeat()
      channels.close()
      await Promise.all([quit(client), quit(subscriber)])
    },
  }
}

/** The reply to the SELECT that ioredis sends on connecting, for the URL's database. */
function isFailedSelect(error: unknown): error is Error {
  return (
    error instanceof Error &&
    (error as Error & { command?: { name?: unknown } }).command?.name === 'select'
  )
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
