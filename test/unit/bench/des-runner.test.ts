import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PacingStats } from '../../../src/bench/des-fleet.ts'
import { runDesPolicy } from '../../../src/bench/des-runner.ts'
import { loadTrace } from '../../../src/bench/trace-loader.ts'
import type { TraceRequest } from '../../../src/bench/trace-request.ts'
import { admissionSchema } from '../../../src/config/schema.ts'
import { DES_RUN_DEFAULTS, syntheticTrace } from '../../helpers/synthetic-trace.ts'
import { assertTracesPresent, TRACE_FILES, tracePath } from './shared-traces.ts'

/** One replica (430k KV tokens) and a burst whose prompts alone need 560k. */
function kvBurst() {
  const requests: TraceRequest[] = []
  for (let id = 0; id < 40; id++) {
    requests.push({ id, atMs: id * 5, inputTokens: 14_000, outputTokens: 600 })
  }
  return syntheticTrace('kv-burst', requests, 1024)
}

const run = (admission?: Record<string, unknown>, timeoutMs = 300_000) =>
  runDesPolicy({
    trace: kvBurst(),
    policy: 'aya',
    replicas: 1,
    profile: 'h100-llama3-8b',
    ...DES_RUN_DEFAULTS,
    timeoutMs,
    admission: admission === undefined ? undefined : admissionSchema.parse(admission),
  })

describe('DES late binding (--admission)', () => {
  it('holds a burst at the router instead of overfilling the engine’s KV', () => {
    const direct = run()
    const bound = run({ maxWaitMs: 120_000 })
    for (const record of [direct, bound]) {
      assert.equal(record.outcomes.length, 40)
      assert.ok(record.outcomes.every((o) => o.ok))
    }
    assert.ok(direct.replicas[0]!.preemptions > 0, 'without it the engine preempts')
    assert.equal(bound.replicas[0]!.preemptions, 0)
    const admission = bound.diagnostics.admission as {
      enqueuedTotal: number
      admittedTotal: number
    }
    assert.ok(admission.enqueuedTotal > 0, 'some requests waited at the router')
    assert.equal(admission.admittedTotal, admission.enqueuedTotal)
    assert.equal(direct.diagnostics.admission, undefined)
  })

  it('fails what waits past maxWaitMs with 503, as the proxy does', () => {
    const record = run({ maxWaitMs: 1000 })
    const refused = record.outcomes.filter((o) => !o.ok)
    assert.ok(refused.length > 0)
    for (const o of refused) {
      assert.equal(o.status, 503)
      assert.equal(o.error, 'LB_ERR_DEADLINE')
    }
  })

  it('times out a request that waits at the router as the client would, recording it once', () => {
    const record = run({ maxWaitMs: 120_000 }, 3000)
    assert.equal(record.outcomes.length, 40)
    const timedOut = record.outcomes.filter((o) => o.error === 'client timeout')
    assert.ok(timedOut.length > 0)
    for (const o of timedOut) assert.equal(o.status, 0)
    const admission = record.diagnostics.admission as {
      rejectedTotal: Record<string, number>
    }
    assert.ok(admission.rejectedTotal.LB_ERR_CLIENT_ABORTED! > 0, 'some timed out while queued')
  })
})

describe('DES router replicas (--routers)', () => {
  /** Two conversations of growing turns over four replicas, arriving in alternation. */
  function conversations(withSessionIds = true) {
    const requests: TraceRequest[] = []
    for (let turn = 0; turn < 8; turn++) {
      for (const session of ['a', 'b']) {
        requests.push({
          id: requests.length,
          atMs: requests.length * 2_000,
          inputTokens: 2_048 * (turn + 1),
          outputTokens: 32,
          sessionId: withSessionIds ? session : undefined,
          // Each turn extends the session's previous prompt: its blocks are the same, plus more.
          hashIds: Array.from({ length: 2 * (turn + 1) }, (_, i) =>
            session === 'a' ? i : 1e6 + i,
          ),
        })
      }
    }
    // Mooncake-style: one hash id per 1024-token block of the prompt.
    return { ...syntheticTrace('conversations', requests, 1024), blockTokens: 1024 }
  }
  const runWith = (routers: number | undefined, withSessionIds = true) =>
    runDesPolicy({
      trace: conversations(withSessionIds),
      policy: 'aya',
      replicas: 4,
      profile: 'h100-llama3-8b',
      ...DES_RUN_DEFAULTS,
      routers,
    })

  it('runs as one router by default and records the count only above one', () => {
    const one = runWith(1)
    assert.equal(one.outcomes.length, 16)
    assert.equal(one.diagnostics.routers, undefined)
    assert.deepEqual(runWith(undefined).outcomes, one.outcomes)
    assert.equal(runWith(2).diagnostics.routers, 2)
  })

  it('gives each router only its share of the traffic to learn from: split conversations lose hits', () => {
    const hitRate = (record: ReturnType<typeof runWith>) => {
      let queries = 0
      let hits = 0
      for (const r of record.replicas) {
        queries += r.prefixQueries
        hits += r.prefixHits
      }
      return hits / queries
    }
    // Turns alternate between a and b, so with two routers in turn each conversation's turns all
    // reach one router: its index sees all of it. With four, every conversation is split over two
    // routers whose indexes each see every other turn.
    const whole = hitRate(runWith(2, false))
    const split = hitRate(runWith(4, false))
    assert.ok(whole > 0.7, `two routers, conversations whole: ${whole}`)
    assert.ok(split < whole - 0.1, `four routers, split: ${split} against ${whole}`)
    // With session ids, every router sends a session it has not seen to the same home.
    assert.equal(hitRate(runWith(4)), whole)
  })
})

describe('DES pacing diagnostics', () => {
  /** Bursts of short prompts, each unlike the others, far more than one replica prefills at once. */
  function shortColdBursts() {
    const requests: TraceRequest[] = []
    for (let id = 0; id < 240; id++) {
      requests.push({ id, atMs: Math.floor(id / 60) * 1500, inputTokens: 1100, outputTokens: 150 })
    }
    return syntheticTrace('short-cold-bursts', requests, 1024)
  }
  const run = (policy: string, policyOptions?: Record<string, unknown>) =>
    runDesPolicy({
      trace: shortColdBursts(),
      policy,
      replicas: 1,
      profile: 'h100-llama3-8b',
      ...DES_RUN_DEFAULTS,
      policyOptions,
    })

  it('counts the engine steps taken while the router held prompts, only for a pacing policy', () => {
    const record = run('aya')
    const paced = record.diagnostics.pacing as PacingStats
    const steps = (record.diagnostics.steps as number[]).reduce((sum, n) => sum + n, 0)
    assert.ok(paced.heldSteps > 0 && paced.heldSteps < steps, `${paced.heldSteps} of ${steps}`)
    assert.ok(paced.unusedBudgetTokens > 0)
    assert.equal(run('aya', { pacing: false }).diagnostics.pacing, undefined)
    assert.equal(run('least-request').diagnostics.pacing, undefined)
  })

  it('on an Azure conv burst of short cold prompts, starves the engines less than timing one after another', async () => {
    assertTracesPresent()
    // 1.1k-token prompts with no shared prefixes, near four replicas' knee: seven share a step.
    const trace = await loadTrace(tracePath(TRACE_FILES.azureConv), {
      maxModelLen: 131_072,
      window: { startS: 1740, endS: 1900 },
      rateScale: 11.36,
    })
    const azure = (policyOptions?: Record<string, unknown>) =>
      runDesPolicy({
        trace,
        policy: 'aya',
        replicas: 4,
        profile: 'h100-llama3-8b',
        ...DES_RUN_DEFAULTS,
        policyOptions,
      }).diagnostics.pacing as PacingStats
    const late = azure({ pacingBacklogPrompts: 1_000_000 })
    const shared = azure()
    assert.ok(late.starvedSteps > 10, `timed one after another: ${late.starvedSteps} starved steps`)
    assert.ok(
      shared.starvedSteps < late.starvedSteps / 2,
      `starved steps: ${shared.starvedSteps} with the backlog rule, ${late.starvedSteps} without`,
    )
    assert.ok(shared.unusedBudgetTokens < late.unusedBudgetTokens)
  })
})
