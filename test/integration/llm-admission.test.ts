import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import {
  adminMetrics,
  metricSample,
  type RunningAya,
  startAdmissionGateway,
  startSimGateway,
} from '../helpers/aya.ts'
import { postLoremChat } from '../helpers/lorem-chat.ts'
import { compressibleText } from '../helpers/raw-client.ts'

const chat = (aya: { url: string }, words: number, headers: Record<string, string> = {}) =>
  postLoremChat(aya.url, words, { headers })

/**
 * On one simulated A100 under aya with a 50-ms TTFT SLO and this admission block, sends each
 * request 30 ms after the one before; the names in the order their answers (each 200) finish.
 */
async function finishOrder(
  t: { after(fn: () => Promise<void>): void },
  admission: Record<string, unknown>,
  sends: ReadonlyArray<readonly [string, (aya: RunningAya) => ReturnType<typeof chat>]>,
): Promise<string[]> {
  const aya = await startSimGateway(t, {
    policy: 'aya',
    sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
    admission: { ttftSloMs: 50, maxWaitMs: 20_000, ...admission },
  })
  const finished: string[] = []
  const answered: Promise<void>[] = []
  for (const [name, send] of sends) {
    if (answered.length > 0) await new Promise((resolve) => setTimeout(resolve, 30))
    answered.push(
      send(aya).then(async (answer) => {
        assert.equal(answer.statusCode, 200, name)
        await answer.body.dump()
        finished.push(name)
      }),
    )
  }
  await Promise.all(answered)
  return finished
}

describe('LLM admission control with the aya policy', () => {
  test('queues a burst beyond the TTFT SLO, sheds batch work, and answers 503 with Retry-After', async (t) => {
    const aya = await startAdmissionGateway(t)
    // A100 prefill is ~12k tokens/s: 8 prompts of ~6k tokens cannot all start within 50 ms.
    const burst = await Promise.all(Array.from({ length: 8 }, () => chat(aya, 6000)))
    const statuses = burst.map((r) => r.statusCode)
    assert.ok(statuses.includes(200), `some complete: ${statuses}`)
    const refused = burst.filter((r) => r.statusCode === 503)
    assert.ok(refused.length > 0, `some miss the deadline: ${statuses}`)
    for (const res of refused) {
      assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_DEADLINE')
      assert.ok(Number(res.headers['retry-after']) >= 1)
      const body = (await res.body.json()) as { error: { type: string } }
      assert.equal(body.error.type, 'server_error')
    }
    for (const res of burst.filter((r) => r.statusCode === 200)) await res.body.dump()

    // While the engine is busy, batch work (negative priority) is shed at once.
    const busy = Array.from({ length: 3 }, () => chat(aya, 6000))
    await new Promise((resolve) => setTimeout(resolve, 20))
    const batch = await chat(aya, 6000, { 'x-priority': 'batch' })
    assert.equal(batch.statusCode, 503)
    assert.equal(batch.headers['x-aya-error-code'], 'LB_ERR_SHED')
    await batch.body.dump()
    for (const res of await Promise.all(busy)) await res.body.dump()

    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    assert.match(
      metrics,
      /aya_admission_rejected_total\{upstream="fleet",reason="LB_ERR_DEADLINE"\} [1-9]/,
    )
    assert.match(
      metrics,
      /aya_scheduler_decisions_total\{policy="aya",branch="(cold|warm|valve)"\} [1-9]/,
    )
    assert.match(metrics, /aya_admission_predicted_wait_seconds\{upstream="fleet"\}/)
    assert.match(
      metrics,
      /aya_admission_class_predicted_wait_seconds\{upstream="fleet",priority="-1"\}/,
    )
  })

  test("bounds the queue with LB_ERR_QUEUE_FULL, and a second tenant evicts the first one's newest waiting request", async (t) => {
    const aya = await startSimGateway(t, {
      policy: 'aya',
      sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
      admission: { ttftSloMs: 50, maxPending: 2, maxWaitMs: 20_000 },
    })
    const hog = { authorization: 'Bearer tenant-a' }
    // ~3k-token prompts are ~250 ms of A100 prefill each: one goes, two wait, the rest are refused.
    const first = Array.from({ length: 6 }, () => chat(aya, 3000, hog))
    await new Promise((resolve) => setTimeout(resolve, 50))
    const other = await chat(aya, 3000, { authorization: 'Bearer tenant-b' })
    assert.equal(other.statusCode, 200, 'the tenant under its fair share is queued and served')
    await other.body.dump()
    const refusedCodes: string[] = []
    let served = 0
    for (const res of await Promise.all(first)) {
      if (res.statusCode === 200) served++
      else {
        assert.equal(res.statusCode, 503)
        refusedCodes.push(String(res.headers['x-aya-error-code']))
        const body = (await res.body.json()) as { error: { type: string } }
        assert.equal(body.error.type, 'server_error')
        continue
      }
      await res.body.dump()
    }
    assert.ok(refusedCodes.length >= 4, `three refused at the bound, one evicted: ${refusedCodes}`)
    assert.ok(served >= 1 && served <= 2, `served ${served}`)
    assert.ok(
      refusedCodes.every((code) => code === 'LB_ERR_QUEUE_FULL'),
      `${refusedCodes}`,
    )
    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    assert.match(
      metrics,
      /aya_admission_rejected_total\{upstream="fleet",reason="LB_ERR_QUEUE_FULL"\} [4-9]/,
    )
  })

  test('lets a waiting interactive request go before batch work that queued earlier', async (t) => {
    // The first fills the engine for ~250 ms; batch work queues, then interactive work behind it.
    const finished = await finishOrder(t, {}, [
      ['first', (aya) => chat(aya, 3000)],
      ['batch', (aya) => chat(aya, 3000, { 'x-priority': 'batch' })],
      ['interactive', (aya) => chat(aya, 3000)],
    ])
    assert.deepEqual(finished, ['first', 'interactive', 'batch'])
  })

  test("takes a request's priority from its route when it sends no header, and from the header when it does", async (t) => {
    const aya = await startSimGateway(
      t,
      {
        policy: 'aya',
        sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
        admission: { ttftSloMs: 50, maxWaitMs: 20_000, shedSheddable: true },
      },
      { route: { priority: 'batch' } },
    )
    const interactive = { 'x-priority': 'interactive' }
    // The header lifts these out of the route's sheddable class: they queue, none is shed.
    const busy = Array.from({ length: 3 }, () => chat(aya, 6000, interactive))
    await new Promise((resolve) => setTimeout(resolve, 20))
    // No header: the route's batch class, shed while the engine is saturated.
    const routed = await chat(aya, 6000)
    assert.equal(routed.statusCode, 503)
    assert.equal(routed.headers['x-aya-error-code'], 'LB_ERR_SHED')
    await routed.body.dump()
    for (const res of await Promise.all(busy)) {
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
  })

  test('lets a short prompt pass a long one that queued first under shortest-predicted-first, not under fifo', async (t) => {
    const sends = [
      ['first', (aya: RunningAya) => chat(aya, 3000)],
      ['long', (aya: RunningAya) => chat(aya, 6000)],
      ['short', (aya: RunningAya) => chat(aya, 1500)],
    ] as const
    const sjf = await finishOrder(t, { order: 'shortest-predicted-first' }, sends)
    assert.deepEqual(sjf, ['first', 'short', 'long'])
    assert.deepEqual(await finishOrder(t, { order: 'fifo' }, sends), ['first', 'long', 'short'])
  })

  test('gives a priority class its own longest wait: batch work outlasts a burst that times interactive work out', async (t) => {
    const aya = await startSimGateway(t, {
      policy: 'aya',
      sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
      admission: { ttftSloMs: 50, maxWaitMs: 300, classes: { batch: { maxWaitMs: 30_000 } } },
    })
    // Eight prompts of ~6k tokens are ~4 s of prefill: interactive ones still queued after
    // 300 ms give up, batch ones (a lower band, served last) wait their turn.
    const interactive = Array.from({ length: 8 }, () => chat(aya, 6000))
    await new Promise((resolve) => setTimeout(resolve, 20))
    const batch = Array.from({ length: 2 }, () => chat(aya, 6000, { 'x-priority': 'batch' }))
    const interactiveStatuses: number[] = []
    for (const res of await Promise.all(interactive)) {
      interactiveStatuses.push(res.statusCode)
      await res.body.dump()
    }
    assert.ok(interactiveStatuses.includes(503), `${interactiveStatuses}`)
    for (const res of await Promise.all(batch)) {
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
  })

  test('forgets a request whose client hung up while its gzip body inflated: it leaves the queue at once and is never sent upstream', async (t) => {
    const aya = await startSimGateway(
      t,
      {
        policy: 'aya',
        sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
        admission: { ttftSloMs: 50, maxWaitMs: 20_000 },
      },
      { log: { access: true } },
    )
    // ~24k tokens of prefill hold the engine for ~2 s: anything sent meanwhile queues.
    const busy = chat(aya, 24_000)
    await new Promise((resolve) => setTimeout(resolve, 50))
    // 8 MB that gzip to 160 kB: Aya inflates it for a few milliseconds on the thread pool, after
    // the body has arrived and before the request reaches the queue. The client hangs up then.
    const body = gzipSync(
      JSON.stringify({
        model: 'llama',
        max_tokens: 4,
        user: compressibleText(8_000_000),
        messages: [{ role: 'user', content: 'hello' }],
      }),
    )
    const client = connect(Number(new URL(aya.url).port), '127.0.0.1')
    client.on('error', () => {})
    client.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: aya\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: ${body.length}\r\n\r\n`,
    )
    client.end(body)
    await new Promise((resolve) => setTimeout(resolve, 3))
    client.destroy()
    await new Promise((resolve) => setTimeout(resolve, 300))
    const depth = metricSample(
      await adminMetrics(aya),
      'aya_admission_queue_depth',
      'upstream="fleet",priority="0"',
    )
    assert.equal(depth, 0, 'the request of a client that left holds no place in the queue')
    const answer = await busy
    assert.equal(answer.statusCode, 200)
    await answer.body.dump()
    const gone = aya.logs.filter((line) => line.msg === 'access' && line.status === 499)
    assert.equal(gone.length, 1)
    assert.equal(gone[0]!.error, 'LB_ERR_CLIENT_ABORTED')
    assert.equal(gone[0]!.attempts, 0, 'nothing was sent upstream for it')
  })
})
