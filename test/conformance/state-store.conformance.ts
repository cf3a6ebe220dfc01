import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it, type TestContext } from 'node:test'
import type { BucketSpec, StateStore } from '../../src/state/state-store.ts'

/** What a StateStore implementation hands the shared suite for one test. */
export interface StateStoreHarness {
  readonly store: StateStore
  /** Lets the store's time pass: advance a manual clock, or sleep for a store on real time. */
  advance(ms: number): Promise<void>
  /** Resolves once published messages have reached subscribers. Default: one macrotask turn. */
  settle?(): Promise<void>
  /**
   * True when `advance` moves time exactly (a manual clock): the TTL and retry-after checks then
   * hold to the millisecond; for stores on real time they check bounds and "after".
   */
  readonly exactTime?: boolean
}

export type StateStoreFactory = () => StateStoreHarness | Promise<StateStoreHarness>

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * The StateStore contract as tests, run by every implementation (in-process, cross-worker,
 * Redis), like hono's shared router cases. Keys get a fresh prefix per test so a store backed by
 * a shared server needs no flushing between tests. Durations stay within a few hundred ms so a
 * real-time store can run the suite with sleeps.
 */
export function runStateStoreConformance(name: string, factory: StateStoreFactory): void {
  const open = async (t: TestContext) => {
    const harness = await factory()
    t.after(() => harness.store.close())
    const prefix = `conformance:${randomUUID()}:`
    return {
      ...harness,
      key: (suffix: string) => prefix + suffix,
      settle: harness.settle ?? nextTurn,
    }
  }

  describe(`StateStore conformance: ${name}`, () => {
    describe('counters', () => {
      it('counts from zero on a missing key and returns each new value', async (t) => {
        const { store, key } = await open(t)
        assert.equal(await store.incr(key('c')), 1)
        assert.equal(await store.incr(key('c'), 5), 6)
        assert.equal(await store.incr(key('c'), -2), 4)
      })

      it('reads a counter back as its decimal string', async (t) => {
        const { store, key } = await open(t)
        await store.incr(key('c'), 42)
        assert.equal(await store.get(key('c')), '42')
      })

      it('accepts fractional deltas that are exact in binary', async (t) => {
        const { store, key } = await open(t)
        assert.equal(await store.incr(key('c'), 0.5), 0.5)
        assert.equal(await store.incr(key('c'), 0.25), 0.75)
      })

      it('starts the TTL when the key is created and never extends it', async (t) => {
        const { store, key, advance } = await open(t)
        assert.equal(await store.incr(key('c'), 1, 200), 1)
        await advance(120)
        assert.equal(await store.incr(key('c'), 1, 200), 2)
        await advance(120)
        assert.equal(await store.get(key('c')), undefined)
        assert.equal(await store.incr(key('c'), 1, 200), 1, 'a new window starts from zero')
      })

      it('ignores a TTL given after the counter was created without one', async (t) => {
        const { store, key, advance } = await open(t)
        await store.incr(key('c'))
        await store.incr(key('c'), 1, 100)
        await advance(200)
        assert.equal(await store.get(key('c')), '2')
      })

      it('adds to a numeric value written by set, keeping its TTL', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('c'), '5', 200)
        assert.equal(await store.incr(key('c'), 2), 7)
        await advance(300)
        assert.equal(await store.get(key('c')), undefined)
      })

      it('rejects incrementing a value that is not a number', async (t) => {
        const { store, key } = await open(t)
        await store.set(key('v'), 'hello')
        await assert.rejects(store.incr(key('v')))
        assert.equal(await store.get(key('v')), 'hello', 'the value is left alone')
      })

      it('rejects a delta that is not finite', async (t) => {
        const { store, key } = await open(t)
        await assert.rejects(store.incr(key('c'), Number.NaN))
        await assert.rejects(store.incr(key('c'), Number.POSITIVE_INFINITY))
      })
    })

    describe('key/value', () => {
      it('returns undefined for a missing key', async (t) => {
        const { store, key } = await open(t)
        assert.equal(await store.get(key('missing')), undefined)
      })

      it('stores, overwrites and reads back values, the empty string included', async (t) => {
        const { store, key } = await open(t)
        await store.set(key('v'), 'one')
        assert.equal(await store.get(key('v')), 'one')
        await store.set(key('v'), 'two')
        assert.equal(await store.get(key('v')), 'two')
        await store.set(key('empty'), '')
        assert.equal(await store.get(key('empty')), '')
      })

      it('treats keys as exact strings: case and unicode matter', async (t) => {
        const { store, key } = await open(t)
        await store.set(key('Key'), 'upper')
        await store.set(key('key'), 'lower')
        await store.set(key('ключ🔑'), 'unicode')
        assert.equal(await store.get(key('Key')), 'upper')
        assert.equal(await store.get(key('key')), 'lower')
        assert.equal(await store.get(key('ключ🔑')), 'unicode')
      })

      it('forgets a value once its TTL has passed', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('v'), 'x', 200)
        await advance(100)
        assert.equal(await store.get(key('v')), 'x')
        await advance(150)
        assert.equal(await store.get(key('v')), undefined)
      })

      it('restarts a TTL on getAndTouch, so that a value in use outlives its first TTL', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('v'), 'x', 200)
        await advance(150)
        assert.equal(await store.getAndTouch(key('v'), 200), 'x')
        await advance(150)
        assert.equal(await store.get(key('v')), 'x', 'past the first TTL, within the touched one')
        await advance(100)
        assert.equal(await store.get(key('v')), undefined)
      })

      it('answers getAndTouch of a missing or expired key with undefined, creating nothing', async (t) => {
        const { store, key, advance } = await open(t)
        assert.equal(await store.getAndTouch(key('missing'), 200), undefined)
        assert.equal(await store.get(key('missing')), undefined)
        await store.set(key('v'), 'x', 100)
        await advance(150)
        assert.equal(await store.getAndTouch(key('v'), 200), undefined)
      })

      it('clears an earlier TTL when set again without one', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('v'), 'x', 100)
        await store.set(key('v'), 'y')
        await advance(200)
        assert.equal(await store.get(key('v')), 'y')
      })

      it('restarts the TTL when set again with one', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('v'), 'x', 200)
        await advance(150)
        await store.set(key('v'), 'y', 200)
        await advance(150)
        assert.equal(await store.get(key('v')), 'y')
      })

      it('setIfAbsent stores only when the key is absent and says whether it stored', async (t) => {
        const { store, key } = await open(t)
        assert.equal(await store.setIfAbsent(key('v'), 'first'), true)
        assert.equal(await store.setIfAbsent(key('v'), 'second'), false)
        assert.equal(await store.get(key('v')), 'first')
      })

      it('setIfAbsent counts any kind of key as present', async (t) => {
        const { store, key } = await open(t)
        await store.incr(key('c'))
        assert.equal(await store.setIfAbsent(key('c'), 'x'), false)
        await store.take(key('b'), { capacity: 2, refillPerSecond: 1 })
        assert.equal(await store.setIfAbsent(key('b'), 'x'), false)
      })

      it('setIfAbsent succeeds again once the earlier value expired', async (t) => {
        const { store, key, advance } = await open(t)
        assert.equal(await store.setIfAbsent(key('lock'), 'a', 100), true)
        await advance(150)
        assert.equal(await store.setIfAbsent(key('lock'), 'b', 100), true)
        assert.equal(await store.get(key('lock')), 'b')
        await advance(150)
        assert.equal(await store.get(key('lock')), undefined, 'the TTL applies to what it stored')
      })

      it('delete says whether a live key existed', async (t) => {
        const { store, key, advance } = await open(t)
        await store.set(key('v'), 'x')
        assert.equal(await store.delete(key('v')), true)
        assert.equal(await store.delete(key('v')), false)
        assert.equal(await store.get(key('v')), undefined)
        await store.set(key('brief'), 'x', 100)
        await advance(150)
        assert.equal(await store.delete(key('brief')), false, 'an expired key is not live')
      })

      it('rejects a TTL that is zero, negative or not finite', async (t) => {
        const { store, key } = await open(t)
        for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
          await assert.rejects(store.set(key('v'), 'x', ttlMs), `set ttl ${ttlMs}`)
          await assert.rejects(store.setIfAbsent(key('v'), 'x', ttlMs), `setIfAbsent ttl ${ttlMs}`)
          await assert.rejects(store.incr(key('c'), 1, ttlMs), `incr ttl ${ttlMs}`)
        }
        assert.equal(await store.get(key('v')), undefined, 'nothing was stored')
      })
    })

    describe('token buckets', () => {
      const spec: BucketSpec = { capacity: 5, refillPerSecond: 10 }

      it('starts full, allows takes down to empty, then refuses', async (t) => {
        const { store, key } = await open(t)
        for (let i = 4; i >= 0; i--) {
          assert.deepEqual(await store.take(key('b'), spec), {
            allowed: true,
            remaining: i,
            retryAfterMs: 0,
          })
        }
        const refused = await store.take(key('b'), spec)
        assert.equal(refused.allowed, false)
        assert.ok(refused.retryAfterMs > 0)
      })

      it('takes a cost all or nothing and reports tokens before a refused take', async (t) => {
        const { store, key } = await open(t)
        assert.equal((await store.take(key('b'), spec, 3)).remaining, 2)
        const refused = await store.take(key('b'), spec, 3)
        assert.equal(refused.allowed, false)
        assert.ok(refused.remaining >= 2 && refused.remaining < 3)
        assert.equal((await store.take(key('b'), spec, 2)).allowed, true, 'nothing was consumed')
      })

      it('refills continuously over time', async (t) => {
        const { store, key, advance } = await open(t)
        await store.take(key('b'), spec, 5)
        await advance(250)
        assert.equal((await store.take(key('b'), spec, 2)).allowed, true, '2.5 tokens are back')
      })

      it('never refills above capacity', async (t) => {
        const { store, key, advance } = await open(t)
        await store.take(key('b'), spec, 1)
        await advance(2000)
        assert.equal((await store.take(key('b'), spec, 5)).allowed, true)
        assert.equal((await store.take(key('b'), spec, 1)).allowed, false)
      })

      it('allows the same take again once retryAfterMs has passed', async (t) => {
        const { store, key, advance } = await open(t)
        const slow: BucketSpec = { capacity: 3, refillPerSecond: 7 }
        await store.take(key('b'), slow, 3)
        const refused = await store.take(key('b'), slow, 2)
        assert.equal(refused.allowed, false)
        await advance(refused.retryAfterMs)
        assert.equal((await store.take(key('b'), slow, 2)).allowed, true)
      })

      it('gives retryAfterMs rounded up to the millisecond, and not a millisecond early', async (t) => {
        const { store, key, advance, exactTime } = await open(t)
        const thirds: BucketSpec = { capacity: 1, refillPerSecond: 3 }
        await store.take(key('b'), thirds)
        const refused = await store.take(key('b'), thirds)
        // One token takes 333.3 ms. On real time some of it has passed between the two takes.
        if (exactTime) assert.equal(refused.retryAfterMs, 334)
        else assert.ok(refused.retryAfterMs > 250 && refused.retryAfterMs <= 334)
        if (exactTime) {
          await advance(refused.retryAfterMs - 1)
          assert.equal((await store.take(key('b'), thirds)).allowed, false)
          await advance(1)
        } else {
          await advance(refused.retryAfterMs)
        }
        assert.equal((await store.take(key('b'), thirds)).allowed, true)
      })

      it('refuses a cost above capacity with retryAfterMs Infinity, consuming nothing', async (t) => {
        const { store, key } = await open(t)
        const refused = await store.take(key('b'), spec, 6)
        assert.deepEqual(refused, {
          allowed: false,
          remaining: 5,
          retryAfterMs: Number.POSITIVE_INFINITY,
        })
        assert.equal((await store.take(key('b'), spec, 5)).allowed, true)
      })

      it('treats cost 0 as a peek that always succeeds', async (t) => {
        const { store, key } = await open(t)
        await store.take(key('b'), spec, 5)
        assert.deepEqual(await store.take(key('b'), spec, 0), {
          allowed: true,
          remaining: 0,
          retryAfterMs: 0,
        })
      })

      it('accepts fractional costs', async (t) => {
        const { store, key } = await open(t)
        assert.equal((await store.take(key('b'), spec, 2.5)).remaining, 2.5)
        assert.equal((await store.take(key('b'), spec, 2.5)).remaining, 0)
      })

      it('never refills a bucket whose refillPerSecond is 0', async (t) => {
        const { store, key, advance } = await open(t)
        const quota: BucketSpec = { capacity: 2, refillPerSecond: 0 }
        await store.take(key('b'), quota, 2)
        await advance(300)
        const refused = await store.take(key('b'), quota)
        assert.equal(refused.allowed, false)
        assert.equal(refused.retryAfterMs, Number.POSITIVE_INFINITY)
      })

      it('keeps buckets under different keys independent', async (t) => {
        const { store, key } = await open(t)
        await store.take(key('a'), spec, 5)
        assert.equal((await store.take(key('a'), spec)).allowed, false)
        assert.equal((await store.take(key('b'), spec)).remaining, 4)
      })

      it('starts a deleted bucket full again', async (t) => {
        const { store, key } = await open(t)
        await store.take(key('b'), spec, 5)
        assert.equal(await store.delete(key('b')), true)
        assert.equal((await store.take(key('b'), spec)).remaining, 4)
      })

      it('rejects invalid bucket specs and costs', async (t) => {
        const { store, key } = await open(t)
        const bad: Array<[BucketSpec, number]> = [
          [{ capacity: 0, refillPerSecond: 1 }, 1],
          [{ capacity: -1, refillPerSecond: 1 }, 1],
          [{ capacity: Number.POSITIVE_INFINITY, refillPerSecond: 1 }, 1],
          [{ capacity: 1, refillPerSecond: -1 }, 1],
          [{ capacity: 1, refillPerSecond: Number.NaN }, 1],
          [spec, -1],
          [spec, Number.NaN],
        ]
        for (const [bucket, cost] of bad) {
          await assert.rejects(store.take(key('b'), bucket, cost), JSON.stringify({ bucket, cost }))
        }
      })

      it('rejects mixing buckets with counters or values on one key', async (t) => {
        const { store, key } = await open(t)
        await store.set(key('v'), 'x')
        await assert.rejects(store.take(key('v'), spec))
        await store.take(key('b'), spec)
        await assert.rejects(store.incr(key('b')))
        await assert.rejects(store.get(key('b')))
      })
    })

    describe('pub/sub', () => {
      it('delivers messages to subscribers of that channel only', async (t) => {
        const { store, key, settle } = await open(t)
        const a: string[] = []
        const b: string[] = []
        store.subscribe(key('a'), (m) => a.push(m))
        store.subscribe(key('b'), (m) => b.push(m))
        await store.publish(key('a'), 'hello')
        await settle()
        assert.deepEqual(a, ['hello'])
        assert.deepEqual(b, [])
      })

      it('delivers every message to every subscriber in publish order', async (t) => {
        const { store, key, settle } = await open(t)
        const first: string[] = []
        const second: string[] = []
        store.subscribe(key('ch'), (m) => first.push(m))
        store.subscribe(key('ch'), (m) => second.push(m))
        await store.publish(key('ch'), '1')
        await store.publish(key('ch'), '2')
        await store.publish(key('ch'), '3')
        await settle()
        assert.deepEqual(first, ['1', '2', '3'])
        assert.deepEqual(second, ['1', '2', '3'])
      })

      it('gives a new subscriber no message published before it subscribed', async (t) => {
        const { store, key, settle } = await open(t)
        const early: string[] = []
        const late: string[] = []
        store.subscribe(key('ch'), (m) => early.push(m))
        await store.publish(key('ch'), 'before')
        store.subscribe(key('ch'), (m) => late.push(m))
        await store.publish(key('ch'), 'after')
        await settle()
        assert.deepEqual(early, ['before', 'after'])
        assert.deepEqual(late, ['after'])
      })

      it('stops delivery after unsubscribe, which is safe to call twice', async (t) => {
        const { store, key, settle } = await open(t)
        const got: string[] = []
        const unsubscribe = store.subscribe(key('ch'), (m) => got.push(m))
        await store.publish(key('ch'), 'one')
        await settle()
        unsubscribe()
        unsubscribe()
        await store.publish(key('ch'), 'two')
        await settle()
        assert.deepEqual(got, ['one'])
      })

      it('keeps delivering to other handlers when one throws', async (t) => {
        const { store, key, settle } = await open(t)
        const got: string[] = []
        store.subscribe(key('ch'), () => {
          throw new Error('handler bug')
        })
        store.subscribe(key('ch'), (m) => got.push(m))
        await store.publish(key('ch'), 'one')
        await store.publish(key('ch'), 'two')
        await settle()
        assert.deepEqual(got, ['one', 'two'])
      })

      it('resolves a publish that nobody hears', async (t) => {
        const { store, key } = await open(t)
        await store.publish(key('nobody'), 'hello')
      })
    })

    describe('lifecycle', () => {
      it('closes idempotently and rejects operations afterwards', async (t) => {
        const { store, key } = await open(t)
        await store.close()
        await store.close()
        await assert.rejects(store.get(key('v')))
        await assert.rejects(store.set(key('v'), 'x'))
        await assert.rejects(store.incr(key('c')))
        await assert.rejects(store.take(key('b'), { capacity: 1, refillPerSecond: 1 }))
        await assert.rejects(store.publish(key('ch'), 'x'))
      })
    })
  })
}
