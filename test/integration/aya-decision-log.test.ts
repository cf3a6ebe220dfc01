import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import { type RunningAya, startSimGateway } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { postGzipAndHangUp } from '../helpers/raw-client.ts'

const startGateway = (
  t: import('node:test').TestContext,
  level: 'debug' | 'info',
  policyOptions: Record<string, unknown> = {},
) =>
  startSimGateway(
    t,
    { policy: 'aya', policyOptions, sim: { replicas: 3, profile: 'h100-llama3-8b', speedup: 20 } },
    { log: { level } },
  )

/** One chat turn; returns the sticky cookie the response sets, if any. */
async function chat(
  aya: RunningAya,
  content = 'word '.repeat(400),
  cookie?: string,
): Promise<string | undefined> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify({ model: 'llama', max_tokens: 2, messages: [{ role: 'user', content }] }),
  })
  assert.equal(res.statusCode, 200)
  await res.body.dump()
  const setCookie = res.headers['set-cookie']
  return setCookie === undefined ? undefined : String(setCookie).split(';')[0]
}

/** The aya policy with sticky cookies over a simulated fleet (`fleet`), decisions logged. */
const startStickyGateway = (t: import('node:test').TestContext, fleet: Record<string, unknown>) =>
  startSimGateway(
    t,
    {
      policy: 'aya',
      sticky: {
        cookie: { name: 'aya_sticky', ttlMs: 60000, secret: 'a-test-secret-of-some-length' },
      },
      ...fleet,
    },
    { log: { level: 'debug' } },
  )

const decisionLines = (aya: RunningAya) => aya.logs.filter((l) => l.msg === 'scheduler decision')

describe('the aya scheduler’s decision log', () => {
  test('writes one debug line per decision with every candidate’s predicted TTFT', async (t) => {
    const aya = await startGateway(t, 'debug')
    await chat(aya)
    const lines = decisionLines(aya)
    assert.equal(lines.length, 1, JSON.stringify(lines))
    const line = lines[0]!
    assert.equal(line.level, 'debug')
    const decision = line.decision as AyaDecision
    assert.equal(decision.policy, 'aya')
    assert.equal(decision.model, 'meta-llama/Llama-3.1-8B-Instruct')
    assert.ok(decision.promptTokens > 400, `${decision.promptTokens}`)
    // No history yet: the prior's mean, within the request's max_tokens cap of 2.
    assert.ok(
      decision.predictedOutputTokens > 0 && decision.predictedOutputTokens <= 2,
      `${decision.predictedOutputTokens}`,
    )
    assert.match(decision.branch, /^(cold|warm|valve|saturated)$/)
    const endpoints = aya.aya.config.upstreams.fleet!.endpoints.map((e) => new URL(e.url).host)
    assert.deepEqual(decision.candidates.map((c) => c.endpoint).sort(), [...endpoints].sort())
    assert.ok(endpoints.includes(decision.chosen), decision.chosen)
    for (const candidate of decision.candidates) {
      assert.ok(
        Number.isFinite(candidate.predictedTtftMs) && candidate.predictedTtftMs > 0,
        `${candidate.endpoint}: ${candidate.predictedTtftMs}`,
      )
      assert.equal(typeof candidate.costMs, 'number')
      assert.equal(typeof candidate.hitTokens, 'number')
    }
  })

  test('forgets the placement of a client gone before its request was sent: the same prompt next finds no hit', async (t) => {
    // Unpaced: a paced prompt's client gone while the pacer holds it is already taken back there.
    const aya = await startGateway(t, 'debug', { pacing: false })
    const content = 'a long shared document '.repeat(400)
    // The client has hung up by the time its inflated body reaches dispatch: placed, never sent.
    await postGzipAndHangUp(
      aya.url,
      JSON.stringify({ model: 'llama', max_tokens: 2, messages: [{ role: 'user', content }] }),
    )
    await eventually(() => aya.logs.some((l) => l.msg === 'access'), 'the hang-up was logged')
    assert.equal(aya.logs.find((l) => l.msg === 'access')?.error, 'LB_ERR_CLIENT_ABORTED')
    assert.equal(decisionLines(aya).length, 1, 'the gone client’s request was placed')
    await chat(aya, content)
    const second = decisionLines(aya)[1]!.decision as AyaDecision
    // Had the index kept the first placement, one engine would be expected to hold the prompt.
    assert.deepEqual(
      second.candidates.map((c) => c.hitTokens),
      second.candidates.map(() => 0),
    )
  })

  test('writes none at info level, while the decision is still counted', async (t) => {
    const aya = await startGateway(t, 'info')
    await chat(aya)
    assert.deepEqual(decisionLines(aya), [])
    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    assert.match(metrics, /aya_scheduler_decisions_total\{policy="aya",branch="[a-z-]+"\} 1/)
  })

  test('counts and logs only its own decisions when two instances share a process', async (t) => {
    const placing = await startGateway(t, 'debug')
    const idle = await startGateway(t, 'debug')
    await chat(placing)
    const branches = async (aya: RunningAya) =>
      (await (await request(`${aya.adminUrl}/metrics`)).body.text())
        .split('\n')
        .filter((line) => line.startsWith('aya_scheduler_decisions_total{'))
    assert.equal((await branches(placing)).length, 1)
    assert.deepEqual(await branches(idle), [])
    assert.equal(decisionLines(placing).length, 1)
    assert.deepEqual(decisionLines(idle), [])
  })

  test('starts and stops writing them when a reload changes the log level', async (t) => {
    const aya = await startGateway(t, 'info')
    const config = aya.aya.config
    aya.aya.reload({ ...config, log: { ...config.log, level: 'debug' } })
    await chat(aya)
    assert.equal(decisionLines(aya).length, 1)
    aya.aya.reload({ ...config, log: { ...config.log, level: 'info' } })
    await chat(aya)
    assert.equal(decisionLines(aya).length, 1)
  })

  test('places a request its sticky cookie binds on that endpoint, warm, on the bound branch', async (t) => {
    const aya = await startStickyGateway(t, {
      sim: { replicas: 3, profile: 'h100-llama3-8b', speedup: 20 },
    })
    const history = 'the same long conversation so far. '.repeat(60)
    const cookie = await chat(aya, history)
    assert.ok(cookie, 'the first response sets the sticky cookie')
    await chat(aya, `${history} and one more question`, cookie)
    const [first, second] = decisionLines(aya).map((l) => l.decision as AyaDecision)
    assert.equal(second?.branch, 'bound')
    assert.equal(second.chosen, first!.chosen)
    assert.deepEqual(
      second.candidates.map((c) => c.endpoint),
      [first!.chosen],
    )
    // The cookie, not a pick, chose it, yet the index knows the conversation is cached there.
    assert.ok(second.candidates[0]!.hitTokens > 300, `${second.candidates[0]!.hitTokens}`)
    const metrics = await (await request(`${aya.adminUrl}/metrics`)).body.text()
    assert.match(metrics, /aya_scheduler_decisions_total\{policy="aya",branch="bound"\} 1/)
  })

  test('holds a request its sticky cookie binds until its own endpoint can start it, though another is idle', async (t) => {
    const aya = await startStickyGateway(t, {
      sim: { replicas: 2, profile: 'a100-llama3-8b', speedup: 1 },
      admission: { ttftSloMs: 50, maxWaitMs: 10_000 },
    })
    const cookie = await chat(aya, 'hello')
    // About half a second of prefill on the bound A100, then a short turn bound to it too.
    const long = chat(aya, 'word '.repeat(6000), cookie)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await chat(aya, 'and a short one', cookie)
    await long
    const decisions = decisionLines(aya).map((l) => l.decision as AyaDecision)
    const bound = decisions.filter((d) => d.branch === 'bound').map((d) => d.chosen)
    assert.equal(bound.length, 2, JSON.stringify(decisions.map((d) => d.branch)))
    assert.ok(
      bound.every((endpoint) => endpoint === decisions[0]!.chosen),
      'both turns on the first turn’s endpoint',
    )
    // The other endpoint could have started it at once; it waited for its own.
    assert.ok(
      decisions.some((d) => d.branch === 'queue'),
      JSON.stringify(decisions.map((d) => d.branch)),
    )
  })

  test('forgets the prefix of a prompt whose client left while it was held, never sent', async (t) => {
    const aya = await startSimGateway(
      t,
      { policy: 'aya', sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 } },
      { log: { level: 'debug' } },
    )
    // Half a second of prefill: the pacer holds what comes behind it.
    const long = chat(aya, 'word '.repeat(6000))
    await new Promise((resolve) => setTimeout(resolve, 30))
    const prompt = 'a conversation the engine never saw. '.repeat(100)
    const leaving = new AbortController()
    const held = request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'llama',
        max_tokens: 2,
        messages: [{ role: 'user', content: prompt }],
      }),
      signal: leaving.signal,
    }).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 30))
    leaving.abort()
    await held
    await long
    await chat(aya, `${prompt} and more`)
    const last = decisionLines(aya).at(-1)!.decision as AyaDecision
    assert.equal(last.candidates[0]!.hitTokens, 0, JSON.stringify(last.candidates))
  })
})
