import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryState } from '../../../src/state/memory-state.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { runStateStoreConformance } from '../../conformance/state-store.conformance.ts'

runStateStoreConformance('memory', () => {
  const clock = createManualClock()
  return {
    store: createMemoryState({ clock }),
    exactTime: true,
    async advance(ms) {
      clock.advance(ms)
    },
  }
})

const flushMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('createMemoryState', () => {
  it('calls itself memory', () => {
    const store = createMemoryState({ clock: createManualClock() })
    assert.equal(store.kind, 'memory')
  })

  it('holds at most maxKeys keys: a new one evicts the one stored longest ago', async () => {
    const store = createMemoryState({ clock: createManualClock() }, { maxKeys: 3 })
    for (const key of ['a', 'b', 'c']) await store.set(key, key, 3_600_000)
    // Stored again (a sticky session refreshed), `a` is the newest: `b` goes first.
    await store.set('a', 'again', 3_600_000)
    await store.set('d', 'd', 3_600_000)
    assert.equal(store.size, 3)
    assert.equal(await store.get('b'), undefined)
    assert.equal(await store.get('a'), 'again')
    assert.equal(await store.get('d'), 'd')
    await store.close()
  })

  it('expires a key exactly when its TTL runs out', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock })
    await store.set('v', 'x', 1000)
    clock.advance(999)
    assert.equal(await store.get('v'), 'x')
    clock.advance(1)
    assert.equal(await store.get('v'), undefined)
    await store.close()
  })

  it('sweeps expired keys nobody reads again', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock }, { sweepIntervalMs: 500 })
    for (let i = 0; i < 50; i++) await store.set(`k${i}`, 'x', 100)
    await store.set('forever', 'x')
    assert.equal(store.size, 51)
    clock.advance(500)
    assert.equal(store.size, 1)
    assert.equal(await store.get('forever'), 'x')
    await store.close()
  })

  it('bounds the work of one sweep tick by the batch size', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock }, { sweepIntervalMs: 100, sweepBatchSize: 10 })
    // Live keys first, so every batch the first tick reads is mostly live and the tick stops.
    for (let i = 0; i < 100; i++) await store.set(`live${i}`, 'x')
    for (let i = 0; i < 100; i++) await store.set(`dead${i}`, 'x', 50)
    clock.advance(100)
    assert.equal(store.size, 200, 'one batch of live keys, nothing expired reached yet')
    clock.advance(900)
    assert.equal(store.size, 200, 'ten ticks of ten: the live keys take a full pass')
    clock.advance(100)
    assert.equal(store.size, 120, 'mostly-expired batches keep the tick going, up to eight')
    clock.advance(100)
    assert.equal(store.size, 100)
    await store.close()
  })

  it('keeps sweeping expired runs within a tick, up to a fixed number of batches', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock }, { sweepIntervalMs: 100, sweepBatchSize: 10 })
    for (let i = 0; i < 200; i++) await store.set(`dead${i}`, 'x', 50)
    clock.advance(100)
    assert.equal(store.size, 120, 'eight batches of ten in the first tick')
    clock.advance(100)
    assert.equal(store.size, 40)
    await store.close()
  })

  it('forgets a bucket once it has refilled, so idle clients cost no memory', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock }, { sweepIntervalMs: 1000 })
    await store.take('b', { capacity: 10, refillPerSecond: 10 }, 1)
    assert.equal(store.size, 1)
    clock.advance(1000)
    assert.equal(store.size, 0)
    assert.equal((await store.take('b', { capacity: 10, refillPerSecond: 10 }, 0)).remaining, 10)
    await store.close()
  })

  it('does not store a bucket that a take leaves full', async () => {
    const store = createMemoryState({ clock: createManualClock() })
    await store.take('b', { capacity: 3, refillPerSecond: 1 }, 0)
    assert.equal(store.size, 0)
    await store.close()
  })

  it('clamps stored tokens to a capacity lowered between takes', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock })
    await store.take('b', { capacity: 10, refillPerSecond: 1 }, 1)
    const result = await store.take('b', { capacity: 4, refillPerSecond: 1 }, 0)
    assert.equal(result.remaining, 4)
    await store.close()
  })

  it('runs the sweep timer only while keys are held, and close clears it', async () => {
    const clock = createManualClock()
    const store = createMemoryState({ clock }, { sweepIntervalMs: 100 })
    assert.equal(clock.pendingTimers, 0)
    await store.set('v', 'x', 50)
    assert.equal(clock.pendingTimers, 1)
    await store.set('w', 'x', 50)
    assert.equal(clock.pendingTimers, 1, 'one timer however many keys')
    clock.advance(100)
    assert.equal(store.size, 0)
    assert.equal(clock.pendingTimers, 0, 'an empty store stops sweeping')
    await store.set('v', 'x')
    await store.close()
    assert.equal(clock.pendingTimers, 0)
    assert.equal(store.size, 0)
  })

  it('reports a throwing handler with its channel and goes on delivering', async () => {
    const errors: Array<[unknown, string]> = []
    const store = createMemoryState({
      clock: createManualClock(),
      onHandlerError: (error, channel) => errors.push([error, channel]),
    })
    const boom = new Error('boom')
    const got: string[] = []
    store.subscribe('ch', () => {
      throw boom
    })
    store.subscribe('ch', (m) => got.push(m))
    await store.publish('ch', 'x')
    await flushMicrotasks()
    assert.deepEqual(errors, [[boom, 'ch']])
    assert.deepEqual(got, ['x'])
    await store.close()
  })

  it('delivers after publish returns, never inside it', async () => {
    const store = createMemoryState({ clock: createManualClock() })
    const got: string[] = []
    store.subscribe('ch', (m) => got.push(m))
    const pending = store.publish('ch', 'x')
    assert.deepEqual(got, [])
    await pending
    await flushMicrotasks()
    assert.deepEqual(got, ['x'])
    await store.close()
  })

  it('skips a subscriber that unsubscribed between publish and delivery', async () => {
    const store = createMemoryState({ clock: createManualClock() })
    const got: string[] = []
    const unsubscribe = store.subscribe('ch', (m) => got.push(m))
    const pending = store.publish('ch', 'x')
    unsubscribe()
    await pending
    await flushMicrotasks()
    assert.deepEqual(got, [])
    await store.close()
  })

  it('drops deliveries still queued when the store closes', async () => {
    const store = createMemoryState({ clock: createManualClock() })
    const got: string[] = []
    store.subscribe('ch', (m) => got.push(m))
    const pending = store.publish('ch', 'x')
    await store.close()
    await pending
    await flushMicrotasks()
    assert.deepEqual(got, [])
  })

  it('refuses new subscriptions once closed', async () => {
    const store = createMemoryState({ clock: createManualClock() })
    await store.close()
    assert.throws(() => store.subscribe('ch', () => {}), /closed/)
  })

  it('never lets more through than capacity plus what refilled (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 60 })), {
          maxLength: 60,
        }),
        async (capacity, refillPerSecond, steps) => {
          const clock = createManualClock()
          const store = createMemoryState({ clock })
          const spec = { capacity, refillPerSecond }
          let allowedCost = 0
          let elapsedMs = 0
          for (const [advanceMs, cost] of steps) {
            clock.advance(advanceMs)
            elapsedMs += advanceMs
            const result = await store.take('b', spec, cost)
            if (result.allowed) allowedCost += cost
            assert.ok(result.remaining >= 0 && result.remaining <= capacity)
          }
          await store.close()
          assert.ok(allowedCost <= capacity + (refillPerSecond * elapsedMs) / 1000 + 1e-9)
        },
      ),
    )
  })
})
