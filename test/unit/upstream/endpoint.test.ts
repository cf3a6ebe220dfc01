import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Endpoint, NEUTRAL_OUTCOME } from '../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function endpoint(clock = createManualClock()): Endpoint {
  return new Endpoint({ id: 'e', url: 'http://e', origin: 'http://e', weight: 1 }, { clock })
}

describe('endpoint leases', () => {
  it('charge prefill until the first token and KV until the end', () => {
    const e = endpoint()
    const lease = e.begin({ prefillTokens: 1_000, kvTokens: 1_200 })
    assert.equal(e.pendingPrefillTokens, 1_000)
    assert.equal(e.kvTokens, 1_200)
    lease.firstToken()
    assert.equal(e.pendingPrefillTokens, 0)
    assert.equal(e.kvTokens, 1_200)
    lease.end({ ok: true, latencyMs: 1 })
    lease.end({ ok: true, latencyMs: 1 })
    assert.equal(e.kvTokens, 0)
    assert.equal(e.inflight, 0)
  })

  it('re-estimate the KV held as the response streams, at 1, 2, 4, 8… tokens', () => {
    const e = endpoint()
    const asked: number[] = []
    const lease = e.begin({
      prefillTokens: 100,
      kvTokens: 300,
      // Prompt 100, what was generated, and a remainder that grows with it (outrunning the mean).
      kvTokensAfter: (generated) => {
        asked.push(generated)
        return 100 + generated + Math.max(200 - generated, generated / 2)
      },
    })
    for (let generated = 1; generated <= 300; generated++) lease.progress(generated)
    assert.deepEqual(asked, [1, 2, 4, 8, 16, 32, 64, 128, 256])
    assert.equal(e.kvTokens, 100 + 256 + 128)
    // A second stream's charge adds; ending one frees exactly what it holds now.
    const other = e.begin({ kvTokens: 50 })
    lease.end({ ok: true, latencyMs: 1 })
    assert.equal(e.kvTokens, 50)
    other.end({ ok: true, latencyMs: 1 })
    assert.equal(e.kvTokens, 0)
  })

  it('keep the dispatch estimate when the cost says nothing of progress', () => {
    const e = endpoint()
    const lease = e.begin({ kvTokens: 300 })
    for (let generated = 1; generated <= 1_000; generated++) lease.progress(generated)
    assert.equal(e.kvTokens, 300)
  })

  it('feed the endpoint the pace its streams get tokens at, every 16 tokens of a stream', () => {
    const clock = createManualClock()
    const e = endpoint(clock)
    assert.equal(e.decodeItlMs, undefined)
    const fast = e.begin()
    const slow = e.begin()
    fast.progress(1)
    slow.progress(1)
    for (let i = 2; i <= 33; i++) {
      clock.advance(10)
      fast.progress(i)
      if (i % 4 === 1) slow.progress(1 + (i - 1) / 4) // one token every 40 ms
    }
    // 32 tokens at 10 ms from one stream; the other has 8 tokens, not yet a sample.
    assert.equal(e.decodeItlMs, 10)
    for (let i = 34; i <= 129; i++) {
      clock.advance(10)
      if (i % 4 === 1) slow.progress(1 + (i - 1) / 4)
    }
    // Now 32 tokens of the slow one too (16 of them later), and the fast one's evidence aged.
    const itl = e.decodeItlMs!
    assert.ok(itl > 20 && itl < 40, `pace ${itl} ms`)
  })

  it('count requests awaiting prefill, and when recent prefills ended', () => {
    const clock = createManualClock()
    const e = endpoint(clock)
    const a = e.begin({ prefillTokens: 10 })
    const b = e.begin({ prefillTokens: 20 })
    e.begin({ kvTokens: 5 }) // nothing to prefill: not counted
    assert.equal(e.pendingPrefillRequests, 2)
    clock.advance(100)
    a.firstToken()
    a.firstToken()
    clock.advance(100)
    b.end({ ok: false, latencyMs: 1 }) // failed before its first token: its prefill ended too
    assert.equal(e.pendingPrefillRequests, 0)
    assert.equal(e.pendingPrefillTokens, 0)
    assert.equal(e.prefillsDoneSince(0), 2)
    assert.equal(e.prefillsDoneSince(150), 1)
    assert.equal(e.prefillsDoneSince(250), 0)
    // The latest 1,024 are remembered; past them how many ended is unknown, so it is no bound.
    clock.advance(100)
    for (let i = 0; i < 1022; i++) e.begin({ prefillTokens: 1 }).firstToken()
    assert.equal(e.prefillsDoneSince(0), 1024)
    assert.equal(e.prefillsDoneSince(250), 1022)
    e.begin({ prefillTokens: 1 }).firstToken()
    assert.equal(e.prefillsDoneSince(0), Number.POSITIVE_INFINITY)
    assert.equal(e.prefillsDoneSince(250), 1023)
    assert.equal(e.prefillsDoneSince(301), 0)
  })

  it('leave out of the decode pace a span in which the client pushed back', () => {
    const clock = createManualClock()
    const e = endpoint(clock)
    const lease = e.begin()
    lease.progress(1)
    for (let i = 2; i <= 17; i++) {
      clock.advance(10)
      lease.progress(i)
    }
    assert.equal(e.decodeItlMs, 10)
    // The client reads one token a second for a while, its socket pushing back each time: that
    // is its pace, not the engine's.
    for (let i = 18; i <= 21; i++) {
      lease.clientStalled()
      clock.advance(1_000)
      lease.progress(i)
    }
    // Caught up again: the next span starts after the stall and samples the engine at 10 ms.
    for (let i = 22; i <= 37; i++) {
      clock.advance(10)
      lease.progress(i)
    }
    const itl = e.decodeItlMs!
    assert.ok(itl < 20, `pace ${itl} ms`)
  })

  it('stop counting a lease that has ended', () => {
    const e = endpoint()
    const lease = e.begin({ kvTokens: 10, kvTokensAfter: (g) => 10 + g })
    lease.end({ ok: true, latencyMs: 1 })
    lease.progress(64)
    assert.equal(e.kvTokens, 0)
  })

  it('holds no KV once nothing is in flight, whatever fractions the charges carried', () => {
    const e = endpoint()
    const leases = [0.1, 0.2, 0.7].map((share) =>
      e.begin({
        kvTokens: 100 / 3 + share,
        pinnedBlocks: [1, 2, 3],
        pinnedBlockTokens: 1000 / 3,
      }),
    )
    assert.ok(e.kvTokens > 1000)
    for (const lease of leases) lease.end({ ok: true, latencyMs: 1 })
    assert.equal(e.kvTokens, 0)
    assert.equal(e.pinnedPrefixBlocks([1]), 0)
  })
})

describe('endpoint failures', () => {
  it('never lower the latency estimate, nor give an endpoint its first sample', () => {
    const e = endpoint()
    e.begin().end({ ok: false, latencyMs: 0.1 })
    assert.equal(e.latencySamples, 0)
    e.begin().end({ ok: true, latencyMs: 50 })
    for (let i = 0; i < 20; i++) e.begin().end({ ok: false, latencyMs: 0.1 })
    assert.equal(e.latencyEwmaMs, 50)
    assert.equal(e.latencySamples, 1)
  })

  it('raise the latency estimate when slower than it, as a timeout would', () => {
    const e = endpoint()
    e.begin().end({ ok: true, latencyMs: 50 })
    e.begin().end({ ok: false, latencyMs: 5_000 })
    assert.equal(e.latencyEwmaMs, 5_000)
  })

  it('count as attempts a request is expected to take, until the next success', () => {
    const e = endpoint()
    assert.equal(e.attemptsPerSuccess, 1)
    for (let i = 0; i < 3; i++) e.begin().end({ ok: false, latencyMs: 1 })
    assert.equal(e.attemptsPerSuccess, 4)
    e.begin().end({ ok: true, latencyMs: 1 })
    assert.equal(e.attemptsPerSuccess, 1)
  })

  it('take a request that never reached the endpoint, or whose client left, as neither success nor failure', () => {
    const e = endpoint()
    e.begin().end({ ok: true, latencyMs: 100 })
    for (let i = 0; i < 3; i++) e.begin().end({ ok: false, latencyMs: 1 })
    // Held for a failing engine, then moved elsewhere: its streak of failures stands.
    e.begin().end(NEUTRAL_OUTCOME)
    e.begin().end({ ok: true, latencyMs: 5, isNeutral: true })
    assert.equal(e.attemptsPerSuccess, 4)
    assert.equal(e.stats.failures, 3)
    assert.equal(e.latencyEwmaMs, 100, 'no 0 ms or 5 ms sample from them')
    // A client that gave up after longer than the estimate is still evidence of slowness.
    e.begin().end({ ok: true, latencyMs: 9_000, isNeutral: true })
    assert.equal(e.latencyEwmaMs, 9_000)
    assert.equal(e.inflight, 0)
  })
})
