import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createEngine,
  type EngineRequest,
  type RequestEvents,
  type RequestResult,
} from '../../../src/sim/engine.ts'
import { A100_LLAMA3_8B, type EngineProfile, H100_LLAMA3_8B } from '../../../src/sim/profiles.ts'
import { promptIdentity } from '../../../src/sim/sim-tokenizer.ts'
import type { Clock } from '../../../src/util/clock.ts'
import { createManualClock, type ManualClock } from '../../../src/util/manual-clock.ts'

function prompt(tokens: number, salt: string, extra: Partial<EngineRequest> = {}): EngineRequest {
  const words = Array.from({ length: tokens }, (_, i) => `${salt}${i}`)
  return { ...promptIdentity(words), ...extra }
}

interface Trace {
  tokensMs: number[]
  result?: RequestResult
  error?: string
  events: RequestEvents
}

function trace(): Trace {
  const t: Trace = { tokensMs: [], events: {} }
  t.events = {
    onToken: (tok) => t.tokensMs.push(tok.atMs),
    onDone: (r) => {
      t.result = r
    },
    onError: (e) => {
      t.error = e.code
    },
  }
  return t
}

function runAll(clock: ManualClock): void {
  for (let guard = 0; clock.runNext(); guard++) assert.ok(guard < 1_000_000, 'engine never idles')
}

function gaps(ms: readonly number[]): number[] {
  return ms.slice(1).map((v, i) => v - ms[i]!)
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

function within(actual: number, expected: number, tolerance = 0.3): void {
  const lo = expected * (1 - tolerance)
  const hi = expected * (1 + tolerance)
  assert.ok(actual >= lo && actual <= hi, `${actual.toFixed(2)} not within ${lo}–${hi}`)
}

describe('sim engine', () => {
  it('answers a 1,000-token prompt on an idle H100 with TTFT of 35–45 ms', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const t = trace()
    engine.submit(prompt(1000, 'a', { maxTokens: 4 }), t.events)
    runAll(clock)
    const ttftMs = t.result!.firstTokenMs! - t.result!.arrivalMs
    assert.ok(ttftMs >= 35 && ttftMs <= 45, `TTFT ${ttftMs}`)
    assert.equal(t.result!.completionTokens, 4)
    assert.equal(t.result!.finishReason, 'length')
  })

  it('decodes 64 concurrent requests at 2k context with an ITL of about 14 ms', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const traces = Array.from({ length: 64 }, (_, i) => {
      const t = trace()
      engine.submit(prompt(2048, `r${i}-`, { outputTokens: 100 }), t.events)
      return t
    })
    runAll(clock)
    const lastFirstMs = Math.max(...traces.map((t) => t.tokensMs[0]!))
    const steady = traces.flatMap((t) => gaps(t.tokensMs.filter((ms) => ms > lastFirstMs)))
    within(median(steady), 14)
  })

  it('stretches the decode gap to about 270 ms when an 8,192-token prefill chunk joins 64 decodes', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const traces = Array.from({ length: 64 }, (_, i) => {
      const t = trace()
      engine.submit(prompt(2048, `r${i}-`, { outputTokens: 300 }), t.events)
      return t
    })
    clock.advance(6000)
    const decodeGapMs = median(gaps(traces[0]!.tokensMs.slice(-10)))
    within(decodeGapMs, 14)
    const joinMs = clock.now()
    engine.submit(prompt(16_000, 'long-'), trace().events)
    clock.advance(1000)
    const stretched = Math.max(...gaps(traces[0]!.tokensMs.filter((ms) => ms >= joinMs - 20)))
    within(stretched, 270)
  })

  it('never runs more than max_num_seqs requests at once', () => {
    const clock = createManualClock()
    let peak = 0
    const engine = createEngine(
      { profile: A100_LLAMA3_8B },
      { clock, observer: { step: () => (peak = Math.max(peak, engine.stats().running)) } },
    )
    for (let i = 0; i < 300; i++) engine.submit(prompt(64, `s${i}-`, { outputTokens: 40 }), {})
    runAll(clock)
    assert.equal(peak, A100_LLAMA3_8B.maxNumSeqs)
    assert.equal(engine.stats().requestSuccess.stop, 300)
  })

  it('serves a repeated long prompt from the prefix cache with a much lower TTFT', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const first = trace()
    engine.submit(prompt(8000, 'p', { maxTokens: 8 }), first.events)
    runAll(clock)
    const second = trace()
    engine.submit(prompt(8000, 'p', { maxTokens: 8 }), second.events)
    runAll(clock)
    const ttft = (t: Trace) => t.result!.firstTokenMs! - t.result!.arrivalMs
    assert.ok(ttft(second) * 5 < ttft(first), `${ttft(second)} vs ${ttft(first)}`)
    assert.equal(second.result!.cachedPromptTokens, Math.floor(7999 / 16) * 16)
    const stats = engine.stats()
    assert.equal(stats.prefixCacheQueries, 16_000)
    assert.equal(stats.prefixCacheHits, 7984)
  })

  it('caps a prefix hit at the prompt length minus one token, in whole blocks', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    engine.submit(prompt(64, 'x', { maxTokens: 1 }), {})
    runAll(clock)
    const t = trace()
    engine.submit(prompt(64, 'x', { maxTokens: 1 }), t.events)
    runAll(clock)
    assert.equal(t.result!.cachedPromptTokens, 48)
  })

  it('counts cached blocks that no request holds as free in KV usage', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    let usageWhileRunning = 0
    engine.submit(prompt(4000, 'u', { maxTokens: 2 }), {
      onFirstToken: () => {
        usageWhileRunning = engine.stats().kvCacheUsage
      },
    })
    runAll(clock)
    const blocks = Math.ceil(4001 / 16)
    within(usageWhileRunning, blocks / (H100_LLAMA3_8B.numGpuBlocks - 1), 0.01)
    const stats = engine.stats()
    assert.equal(stats.kvCacheUsage, 0)
    assert.ok(stats.numCachedBlocks >= 250, `${stats.numCachedBlocks} cached blocks`)
  })

  it('fills the waiting queue and preempts by recompute when KV blocks run out', () => {
    const clock = createManualClock()
    const profile: EngineProfile = { ...H100_LLAMA3_8B, numGpuBlocks: 101 }
    let peakWaiting = 0
    const engine = createEngine(
      { profile },
      {
        clock,
        observer: { step: () => (peakWaiting = Math.max(peakWaiting, engine.stats().waiting)) },
      },
    )
    const traces = Array.from({ length: 8 }, (_, i) => {
      const t = trace()
      engine.submit(prompt(300, `k${i}-`, { outputTokens: 300 }), t.events)
      return t
    })
    runAll(clock)
    const stats = engine.stats()
    assert.ok(peakWaiting > 0, 'no request ever waited')
    assert.ok(stats.preemptions > 0, 'no preemption')
    assert.ok(stats.running <= 100 * 16)
    for (const t of traces) assert.equal(t.result?.completionTokens, 300)
    assert.equal(stats.kvCacheUsage, 0)
  })

  it('stops at the true output length with stop, and at max_tokens with length', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const a = trace()
    const b = trace()
    engine.submit(prompt(10, 'a', { maxTokens: 50, outputTokens: 7 }), a.events)
    engine.submit(prompt(10, 'b', { maxTokens: 5, outputTokens: 7 }), b.events)
    runAll(clock)
    assert.deepEqual([a.result!.completionTokens, a.result!.finishReason], [7, 'stop'])
    assert.deepEqual([b.result!.completionTokens, b.result!.finishReason], [5, 'length'])
  })

  it('rejects a prompt over the context window', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const t = trace()
    engine.submit({ promptTokens: 131_072, promptBlockHashes: [], promptHash: 1 }, t.events)
    assert.equal(t.error, 'context_length_exceeded')
  })

  it('frees the KV blocks of an aborted request', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const t = trace()
    const handle = engine.submit(prompt(20_000, 'z'), t.events)
    clock.advance(300)
    assert.ok(engine.stats().kvCacheUsage > 0)
    handle.abort()
    assert.equal(t.result?.finishReason, 'abort')
    assert.deepEqual([engine.stats().running, engine.stats().kvCacheUsage], [0, 0])
    runAll(clock)
    assert.equal(t.tokensMs.length, 0)
  })

  it('keeps step deadlines absolute when timers fire late, and records the lateness', () => {
    const manual = createManualClock()
    const lateClock: Clock = {
      now: manual.now,
      wallNow: manual.wallNow,
      setTimer: (ms, fn) => manual.setTimer(ms + 5, fn),
    }
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock: lateClock })
    const t = trace()
    engine.submit(prompt(100, 'l', { outputTokens: 50 }), t.events)
    runAll(manual)
    const decodeGaps = gaps(t.tokensMs)
    for (const g of decodeGaps) within(g, 7.4, 0.01)
    const lateness = engine.stepLateness()
    assert.equal(lateness.steps, 50)
    assert.ok(lateness.meanMs >= 4.9 && lateness.maxMs <= 5.1, JSON.stringify(lateness))
  })
})
