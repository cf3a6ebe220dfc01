import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runDesPolicy } from '../../../src/bench/des-runner.ts'
import type { TraceRequest } from '../../../src/bench/trace-request.ts'
import { admissionSchema } from '../../../src/config/schema.ts'
import { DES_RUN_DEFAULTS, syntheticTrace } from '../../helpers/synthetic-trace.ts'

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
