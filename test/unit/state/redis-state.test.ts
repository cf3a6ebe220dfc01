import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { startRedisProcess } from '../../../src/bench/redis-process.ts'
import { createRedisState } from '../../../src/state/redis-state.ts'
import { redisConnectionOptions } from '../../../src/state/redis-url.ts'
import type { StateStore } from '../../../src/state/state-store.ts'
import { createSystemClock } from '../../../src/util/clock.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { runStateStoreConformance } from '../../conformance/state-store.conformance.ts'
import { eventually } from '../../helpers/eventually.ts'
import {
  pauseRedis,
  type RunningRedis,
  restartRedisEmpty,
  startRedis,
  startTcpRedis,
  untilSubscribed,
} from '../../helpers/redis-server.ts'
import { startTcpRelay } from '../../helpers/tcp-relay.ts'

let redis: RunningRedis
before(async () => {
  redis = await startRedis()
})
after(() => redis.close())

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const clock = createSystemClock()

const open = (keyPrefix?: string): StateStore =>
  createRedisState({ url: redis.url, ...(keyPrefix ? { keyPrefix } : {}) }, { clock })

// Keys expire on Redis's own time, so `advance` sleeps; buckets refill on the injected clock,
// which moves with it exactly, so no bucket refills while a test is between two takes.
runStateStoreConformance('redis', () => {
  const bucketClock = createManualClock(Date.now())
  return {
    store: createRedisState({ url: redis.url }, { clock: bucketClock }),
    async advance(ms) {
      bucketClock.advance(ms)
      await sleep(ms)
    },
  }
})

/**
 * A store with `commandTimeoutMs` 300 on a server that answered `k` = `v`, then was paused:
 * `resume` lets it answer again.
 */
async function pausedStore(t: { after(fn: () => unknown): void }) {
  const server = await startRedis()
  t.after(() => server.close())
  const store = createRedisState({ url: server.url, commandTimeoutMs: 300 }, { clock })
  t.after(() => store.close())
  await store.set('k', 'v')
  await eventually(() => store.connected, 'both connections up')
  return { store, resume: pauseRedis(server) }
}

describe('createRedisState', () => {
  it('calls itself redis', async () => {
    const store = open()
    assert.equal(store.kind, 'redis')
    await store.close()
  })

  it('shares counters, values and buckets between two instances on one server', async (t) => {
    const a = open()
    const b = open()
    t.after(() => Promise.all([a.close(), b.close()]))
    const key = `shared:${Math.random()}`
    await a.incr(`${key}:c`, 2)
    assert.equal(await b.incr(`${key}:c`, 3), 5)
    await b.set(`${key}:v`, 'from b')
    assert.equal(await a.get(`${key}:v`), 'from b')
    assert.equal(await a.setIfAbsent(`${key}:v`, 'from a'), false)
    const spec = { capacity: 2, refillPerSecond: 0 }
    assert.equal((await a.take(`${key}:b`, spec)).allowed, true)
    assert.equal((await b.take(`${key}:b`, spec)).allowed, true)
    const refused = await a.take(`${key}:b`, spec)
    assert.equal(refused.allowed, false, 'the second instance drew from the same bucket')
    assert.equal(refused.retryAfterMs, Number.POSITIVE_INFINITY)
  })

  it('carries a message to the other instance once, and never echoes it to the sender twice', async (t) => {
    const a = open()
    const b = open()
    t.after(() => Promise.all([a.close(), b.close()]))
    const gotA: string[] = []
    const gotB: string[] = []
    a.subscribe('ch', (m) => gotA.push(m))
    b.subscribe('ch', (m) => gotB.push(m))
    await untilSubscribed(redis, 'aya:ch', 2)
    await a.publish('ch', 'one')
    await a.publish('ch', 'two')
    await b.publish('ch', 'three')
    for (let i = 0; i < 100 && (gotA.length < 3 || gotB.length < 3); i++) await sleep(10)
    // Each publisher's messages arrive in its order; between publishers there is no order to keep
    // (b hears its own at once, a's through Redis).
    for (const got of [gotA, gotB]) {
      assert.deepEqual([...got].sort(), ['one', 'three', 'two'])
      assert.ok(got.indexOf('one') < got.indexOf('two'), `${got}`)
    }
    await sleep(50)
    assert.equal(gotA.length + gotB.length, 6, 'no echo')
  })

  it('drops a message published without a sender id, naming its channel, instead of cutting it', async (t) => {
    const errors: Error[] = []
    const a = createRedisState(
      { url: redis.url },
      { clock, onError: (error) => errors.push(error as Error) },
    )
    const b = open()
    const byHand = new Redis(redisConnectionOptions(redis.url))
    t.after(() => Promise.all([a.close(), b.close(), byHand.quit()]))
    const got: string[] = []
    a.subscribe('by-hand', (m) => got.push(m))
    await untilSubscribed(redis, 'aya:by-hand', 1)
    await byHand.publish('aya:by-hand', 'hello from redis-cli')
    await byHand.publish('aya:by-hand', 'a message typed by hand, longer than a sender id is')
    await b.publish('by-hand', 'from aya')
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(10)
    await sleep(50)
    assert.deepEqual(got, ['from aya'])
    assert.equal(errors.length, 2)
    assert.match(errors[0]!.message, /state channel "by-hand" that no Aya sent/)
    assert.match(errors[0]!.message, /"hello from redis-cli"/)
    assert.match(errors[1]!.message, /"a message typed by hand, longer than a sender id is"/)
  })

  it('keeps deployments with different key prefixes apart', async (t) => {
    const a = open('one:')
    const b = open('two:')
    t.after(() => Promise.all([a.close(), b.close()]))
    const got: string[] = []
    b.subscribe('ch', (m) => got.push(m))
    await untilSubscribed(redis, 'two:ch', 1)
    await a.set('k', 'a')
    await a.publish('ch', 'for one')
    await sleep(50)
    assert.equal(await b.get('k'), undefined)
    assert.deepEqual(got, [])
  })

  it('fails a command within its timeout when the server is gone, instead of waiting', async (t) => {
    const gone = await startRedis()
    const store = createRedisState({ url: gone.url, commandTimeoutMs: 200 }, { clock })
    t.after(() => store.close())
    await store.set('k', 'v')
    await gone.close()
    const startedMs = Date.now()
    await assert.rejects(store.get('k'))
    assert.ok(Date.now() - startedMs < 5000, `gave up after ${Date.now() - startedMs} ms`)
  })
})

describe('createRedisState on a database of its own', () => {
  it('keeps its keys in the database its URL names', async (t) => {
    const server = await startTcpRedis()
    t.after(() => server.close())
    const store = createRedisState({ url: `${server.url}/3` }, { clock })
    const probe = new Redis(redisConnectionOptions(`${server.url}/3`))
    t.after(() => Promise.all([store.close(), probe.quit()]))
    await store.set('k', 'in 3')
    assert.equal(await probe.get('aya:k'), 'in 3')
  })

  it('keeps its keys in the database a socket URL names with ?db=', async (t) => {
    const store = createRedisState({ url: `${redis.url}?db=5`, keyPrefix: 'socket-db:' }, { clock })
    const probe = new Redis({ path: new URL(redis.url).pathname, db: 5 })
    t.after(() => Promise.all([store.close(), probe.quit()]))
    await store.set('k', 'in 5')
    assert.equal(await probe.get('socket-db:k'), 'in 5')
  })

  it('hears only the stores on its own database, though Redis pub/sub spans them all', async (t) => {
    const server = await startTcpRedis()
    t.after(() => server.close())
    const [listener, sameDb, otherDb] = [1, 1, 2].map((db) =>
      createRedisState({ url: `${server.url}/${db}` }, { clock }),
    ) as [StateStore, StateStore, StateStore]
    t.after(() => Promise.all([listener, sameDb, otherDb].map((store) => store.close())))
    const heard: string[] = []
    listener.subscribe('load:fleet', (message) => heard.push(message))
    // Redis confirms the SUBSCRIBE on its own connection: until a message is heard, it may not be.
    await eventually(async () => {
      await sameDb.publish('load:fleet', 'ping')
      return heard.includes('ping')
    }, 'the listener subscribed')
    await otherDb.publish('load:fleet', 'from database 2')
    // Delivered in publish order: once this is heard, the other would have been.
    await sameDb.publish('load:fleet', 'from database 1')
    await eventually(() => heard.includes('from database 1'), 'the same database heard')
    assert.ok(!heard.includes('from database 2'), 'another database’s message reached it')
  })

  it('stays down, writing nothing to database 0, when the server has no database of that number', async (t) => {
    const server = await startTcpRedis(['--databases', '4'])
    t.after(() => server.close())
    const errors: Error[] = []
    const store = createRedisState(
      { url: `${server.url}/7`, commandTimeoutMs: 5000 },
      { clock, onError: (error) => errors.push(error as Error) },
    )
    const probe = new Redis(redisConnectionOptions(server.url))
    t.after(() => Promise.all([store.close(), probe.quit()]))
    for (let i = 0; i < 200 && errors.length === 0; i++) await sleep(10)
    await sleep(300) // ioredis would have been ready on database 0 by now
    assert.equal(store.connected, false)
    const startedMs = Date.now()
    await assert.rejects(store.set('k', 'lost'))
    assert.ok(Date.now() - startedMs < 200, `a set waited ${Date.now() - startedMs} ms`)
    assert.equal(await probe.get('aya:k'), null, 'nothing written to database 0')
    const said = errors.map((error) => error.message).join('\n')
    assert.match(said, /state\.url redis:\/\/127\.0\.0\.1:\d+\/7 names database 7/)
    assert.match(said, /DB index is out of range/)
  })
})

describe('createRedisState when Redis comes and goes', () => {
  it('fails commands at once after one command timeout when its first connection hangs, not after two connect timeouts', async (t) => {
    // A TLS handshake to a plain Redis never completes, as a connection to a host whose packets
    // are dropped never does: ioredis gives each attempt 10 s.
    const server = await startTcpRedis()
    t.after(() => server.close())
    const store = createRedisState(
      { url: server.url.replace('redis://', 'rediss://'), commandTimeoutMs: 500 },
      { clock },
    )
    t.after(() => store.close())
    await assert.rejects(store.get('k'), 'a command met in the first command timeout waits it out')
    await sleep(100)
    const startedMs = Date.now()
    await assert.rejects(store.get('k'))
    const waitedMs = Date.now() - startedMs
    assert.ok(waitedMs < 250, `a command after the first command timeout waited ${waitedMs} ms`)
  })

  it('hears a channel it subscribed to before the server was up, once it is', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'aya-late-redis-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const socket = join(dir, 'late.sock')
    const early = createRedisState({ url: `unix://${socket}` }, { clock })
    t.after(() => early.close())
    const heard: string[] = []
    early.subscribe('ch', (message) => heard.push(message))
    await sleep(300) // ioredis has tried, and failed, to connect by now
    assert.equal(early.connected, false)
    const late = await startRedisProcess({ socket })
    t.after(() => late.close())
    await untilSubscribed(late, 'aya:ch', 1)
    for (let i = 0; i < 200 && !early.connected; i++) await sleep(10)
    assert.equal(early.connected, true, 'connected once the server is up')
    const other = createRedisState({ url: late.url }, { clock })
    t.after(() => other.close())
    await other.publish('ch', 'hello')
    for (let i = 0; i < 200 && heard.length === 0; i++) await sleep(10)
    assert.deepEqual(heard, ['hello'])
  })

  it('says once that it is connected again when a lost server comes back, and not on a first connect', async (t) => {
    const server = await startRedis()
    let reconnects = 0
    const store = createRedisState({ url: server.url }, { clock, onReconnect: () => reconnects++ })
    t.after(() => store.close())
    await eventually(() => store.connected, 'first connected')
    assert.equal(reconnects, 0)
    const back = await restartRedisEmpty(server)
    t.after(() => Promise.all([server.close(), back.close()]))
    await eventually(() => reconnects > 0, 'told of the reconnect', 15_000)
    assert.equal(store.connected, true)
    await store.close()
    await sleep(100)
    assert.equal(reconnects, 1)
  })

  it('fails a command at once, not after commandTimeoutMs, while a server never yet reached stays down', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'aya-no-redis-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const store = createRedisState(
      { url: `unix://${join(dir, 'never.sock')}`, commandTimeoutMs: 5000 },
      { clock },
    )
    t.after(() => store.close())
    await sleep(1500) // ioredis has failed several attempts, and now waits longer between them
    for (let i = 0; i < 3; i++) {
      const startedMs = Date.now()
      await assert.rejects(store.get('k'))
      const tookMs = Date.now() - startedMs
      assert.ok(tookMs < 200, `a get waited ${tookMs} ms for a server that is down`)
    }
  })

  it('reads down and fails commands at once after one goes unanswered by a paused server, and reads up once it answers', async (t) => {
    const { store, resume } = await pausedStore(t)
    try {
      await assert.rejects(store.get('k'), /timed out/)
      await eventually(() => !store.connected, 'the store read down')
      for (let i = 0; i < 3; i++) {
        const startedMs = Date.now()
        await assert.rejects(store.get('k'))
        const tookMs = Date.now() - startedMs
        assert.ok(tookMs < 150, `a get waited ${tookMs} ms for a server that answers nothing`)
      }
    } finally {
      resume()
    }
    await eventually(() => store.connected, 'the store up again', 15_000)
    assert.equal(await store.get('k'), 'v')
  })

  it('reads down within two commandTimeoutMs of the server pausing, with no command sent, and up once it answers', async (t) => {
    const server = await startRedis()
    t.after(() => server.close())
    const store = createRedisState({ url: server.url, commandTimeoutMs: 300 }, { clock })
    t.after(() => store.close())
    await eventually(() => store.connected, 'both connections up')
    const resume = pauseRedis(server)
    try {
      // 600 ms is the bound; a loaded machine gets more before this fails.
      await eventually(() => !store.connected, 'an idle store read a paused server as down', 5000)
    } finally {
      resume()
    }
    await eventually(() => store.connected, 'the store up again', 15_000)
  })

  it('reads down and re-subscribes within a few commandTimeoutMs when its subscriber connection is black-holed', async (t) => {
    const server = await startRedis()
    t.after(() => server.close())
    const relay = await startTcpRelay({ path: decodeURIComponent(new URL(server.url).pathname) })
    t.after(() => relay.close())
    const store = createRedisState({ url: relay.url, commandTimeoutMs: 300 }, { clock })
    const publisher = createRedisState({ url: server.url }, { clock })
    t.after(() => Promise.all([store.close(), publisher.close()]))
    const heard: string[] = []
    store.subscribe('ch', (message) => heard.push(message))
    await untilSubscribed(server, 'aya:ch', 1)
    await eventually(() => store.connected, 'both connections up')
    await publisher.publish('ch', 'before')
    await eventually(() => heard.includes('before'), 'a message heard through the relay')
    // The subscriber's side stays open and hears nothing, and the subscriber sends nothing of
    // its own: only a PING it is made to send can find the silence.
    assert.equal(relay.silenceSubscribers(), 1, 'the subscriber connection, and it alone')
    // 600 ms is the bound; a loaded machine gets more before this fails.
    await eventually(() => !store.connected, 'the store read its dead subscriber as down', 5000)
    await untilSubscribed(server, 'aya:ch', 1)
    await eventually(() => store.connected, 'the store up again', 15_000)
    await publisher.publish('ch', 'after')
    await eventually(() => heard.includes('after'), 'a message heard on the new subscriber')
    assert.deepEqual(heard, ['before', 'after'])
  })

  it('runs a command that timed out on a paused server at most once, however the connection comes back', async (t) => {
    const { store, resume } = await pausedStore(t)
    try {
      await assert.rejects(store.incr('count'), /timed out/)
      await eventually(() => !store.connected, 'the store read down')
    } finally {
      resume()
    }
    await eventually(() => store.connected, 'the store up again', 15_000)
    await sleep(100)
    // The server runs what it had read once it resumes; the caller was told the incr failed, so
    // sending it again on the new connection would count it twice.
    assert.ok(['1', undefined].includes(await store.get('count')), 'counted once at most')
  })

  it('after the server crashes and comes back empty, runs its scripts and hears its channels again', async (t) => {
    const server = await startRedis()
    t.after(() => server.close())
    const a = createRedisState({ url: server.url }, { clock })
    const b = createRedisState({ url: server.url }, { clock })
    t.after(() => Promise.all([a.close(), b.close()]))
    const heard: string[] = []
    b.subscribe('ch', (message) => heard.push(message))
    await untilSubscribed(server, 'aya:ch', 1)
    const spec = { capacity: 2, refillPerSecond: 0 }
    assert.equal(await a.incr('count'), 1)
    assert.equal((await a.take('bucket', spec)).remaining, 1)
    const empty = await restartRedisEmpty(server)
    t.after(() => empty.close())
    await eventually(() => a.connected && b.connected, 'both stores up again', 15_000)
    await untilSubscribed(empty, 'aya:ch', 1)
    // The new server knows neither the scripts nor the counts.
    assert.equal(await a.incr('count'), 1)
    assert.equal((await a.take('bucket', spec)).remaining, 1)
    await a.publish('ch', 'after the crash')
    await eventually(() => heard.length > 0, 'the message heard')
    assert.deepEqual(heard, ['after the crash'])
  })

  it('never moves a bucket back in time for a replica whose clock lags', async (t) => {
    const ahead = createManualClock(0, 1_700_000_010_000)
    const behind = createManualClock(0, 1_700_000_000_000)
    const a = createRedisState({ url: redis.url }, { clock: ahead })
    const b = createRedisState({ url: redis.url }, { clock: behind })
    t.after(() => Promise.all([a.close(), b.close()]))
    const key = `lag:${Math.random()}`
    const spec = { capacity: 5, refillPerSecond: 10 }
    assert.equal((await a.take(key, spec, 5)).allowed, true)
    // 10 s behind: no refill for it, and the bucket keeps the later stamp.
    assert.equal((await b.take(key, spec, 1)).allowed, false)
    // So the replica ahead finds no time passed either: without the stamp kept, the lagging
    // replica's write would hand it 10 s of refill.
    assert.equal((await a.take(key, spec, 1)).allowed, false)
  })
})
