import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { parseConfigObject } from '../../src/config/load.ts'
import { A100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { adminMetrics, metricSample, type RunningAya, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { type FrontedEngine, startFrontedEngines } from '../helpers/fronted-engines.ts'
import { postLoremChat } from '../helpers/lorem-chat.ts'
import { openRawClient } from '../helpers/raw-client.ts'

/** The model `llama` on `upstream`, one engine behind a door, with this admission block. */
const configFor = (
  engine: FrontedEngine,
  upstream: string,
  admission: Record<string, unknown> | undefined,
) => ({
  listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
  admin: { address: '127.0.0.1', port: 0 },
  log: { access: false },
  routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
  models: { llama: { deployments: [{ upstream, model: A100_LLAMA3_8B.modelName }] } },
  upstreams: {
    [upstream]: {
      policy: 'aya',
      endpoints: [{ url: engine.url }],
      engineMetrics: false,
      ...(admission ? { admission } : {}),
    },
  },
})

const chat = (url: string, stream: boolean) => postLoremChat(url, 3000, { stream })

/**
 * Aya before one engine whose door holds every prompt (`engine.release()` lets them go), with
 * this admission block on `upstream`.
 */
async function startHeldEngine(
  t: TestContext,
  upstream: string,
  admission: Record<string, unknown> | undefined,
) {
  const [started] = await startFrontedEngines(t, {
    profile: A100_LLAMA3_8B,
    speedup: 1,
    count: 1,
    models: [A100_LLAMA3_8B.modelName],
  })
  const engine = started!
  const aya = await startAya(configFor(engine, upstream, admission))
  t.after(() => aya.close())
  engine.hold()
  return { engine, aya }
}

/**
 * One streamed prompt held at the engine's door (its first token never comes, so Aya counts its
 * prefill pending and places nothing else), and three more waiting in admission behind it.
 */
async function queueBehindHeldPrompt(t: TestContext, upstream: string) {
  const { engine, aya } = await startHeldEngine(t, upstream, { ttftSloMs: 50, maxWaitMs: 60_000 })
  const first = chat(aya.url, true)
  await engine.arrivals(1)
  const waiting = Array.from({ length: 3 }, () => chat(aya.url, false))
  const depth = async () =>
    metricSample(
      await adminMetrics(aya),
      'aya_admission_queue_depth',
      `upstream="${upstream}",priority="0"`,
    )
  await eventually(async () => (await depth()) === 3, 'three requests wait in admission')
  return { engine, aya, first, waiting }
}

/**
 * Closes Aya with a short drain while `first` is held at the engine's door: it went upstream, so it
 * is cut with the connection, and each of `waiting`, never sent, is answered 503 LB_ERR_SHED with
 * a Retry-After, in OpenAI's shape, on a connection that closes after it.
 */
async function closeAndExpectShed(
  aya: RunningAya,
  engine: FrontedEngine,
  first: Promise<unknown>,
  waiting: ReturnType<typeof chat>[],
) {
  const cut = first.then(
    () => 'answered',
    () => 'cut',
  )
  await aya.aya.close(200)
  engine.release()
  assert.equal(await cut, 'cut')
  for (const answer of await Promise.all(waiting)) {
    assert.equal(answer.statusCode, 503)
    assert.equal(answer.headers['x-aya-error-code'], 'LB_ERR_SHED')
    // The socket closes after it: the answer says so, so no client sends another request on it.
    assert.equal(answer.headers.connection, 'close')
    const retryAfter = Number(answer.headers['retry-after'])
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${retryAfter}`)
    const body = (await answer.body.json()) as { error: { type: string; code: string } }
    assert.equal(body.error.type, 'server_error')
    assert.equal(body.error.code, 'LB_ERR_SHED')
  }
}

describe('a reload while requests wait in admission', () => {
  for (const [what, upstream, admission] of [
    ['removes the admission block', 'fleet', undefined],
    ['moves the model to another upstream', 'fleet2', { ttftSloMs: 50 }],
  ] as const) {
    test(`that ${what} lets the waiting requests go on at once, as new ones now go, and serves them all`, async (t) => {
      const { engine, aya, first, waiting } = await queueBehindHeldPrompt(t, 'fleet')
      aya.aya.reload(parseConfigObject(configFor(engine, upstream, admission), {}))
      // The door still holds the first prompt: nothing but the reload let these three go.
      await eventually(() => engine.arrived === 4, 'the waiting requests reach the engine')
      engine.release()
      for (const answer of await Promise.all([first, ...waiting])) {
        assert.equal(answer.statusCode, 200)
        await answer.body.dump()
      }
      assert.equal(engine.arrived, 4)
    })
  }
  test('that changes the admission block queues a request whose body arrived across it in the new queue, counted and closed with it', async (t) => {
    const { engine, aya } = await startHeldEngine(t, 'fleet', { ttftSloMs: 50, maxWaitMs: 60_000 })
    const first = chat(aya.url, true).catch(() => {})
    await engine.arrivals(1)
    const body = JSON.stringify({
      model: 'llama',
      max_tokens: 4,
      messages: [{ role: 'user', content: 'lorem '.repeat(3000) }],
    })
    const slow = await openRawClient(aya.url)
    slow.socket.on('error', () => {})
    slow.socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
    )
    // Aya routes it as its head arrives, by the runtime before the reload.
    await new Promise((resolve) => setTimeout(resolve, 50))
    aya.aya.reload(
      parseConfigObject(configFor(engine, 'fleet', { ttftSloMs: 50, maxWaitMs: 59_000 }), {}),
    )
    const depth = async () =>
      metricSample(
        await adminMetrics(aya),
        'aya_admission_queue_depth',
        'upstream="fleet",priority="0"',
      )
    // A request after the reload waits in the new queue, whose drains let the empty old one go.
    const after = chat(aya.url, false).catch(() => {})
    await eventually(async () => (await depth()) === 1, 'the request after the reload waits')
    // A few of its rechecks (every 25 ms), each finding the old queue empty.
    await new Promise((resolve) => setTimeout(resolve, 100))
    // Its body read only now, the slow request asks the queue of the runtime before the reload.
    slow.socket.write(body.slice(100))
    await eventually(async () => (await depth()) === 2, 'the slow request waits where it is seen')
    await aya.aya.close(200)
    await eventually(() => slow.received().includes('\r\n\r\n'), 'the slow request is answered')
    assert.match(slow.received(), /^HTTP\/1\.1 503 /)
    assert.match(slow.received(), /x-aya-error-code: LB_ERR_SHED/i)
    engine.release()
    await Promise.all([first, after])
  })
  test('that adds an admission block lets its first waiter go when a request from before it ends its prefill, not at the next recheck', async (t) => {
    const { engine, aya } = await startHeldEngine(t, 'fleet', undefined)
    const first = chat(aya.url, true)
    await engine.arrivals(1)
    // Rechecks a minute apart: only the first prompt's prefill ending can let the waiter go.
    const admission = { ttftSloMs: 50, maxWaitMs: 60_000, recheckMs: 60_000 }
    aya.aya.reload(parseConfigObject(configFor(engine, 'fleet', admission), {}))
    const waiting = chat(aya.url, false)
    const depth = async () =>
      metricSample(
        await adminMetrics(aya),
        'aya_admission_queue_depth',
        'upstream="fleet",priority="0"',
      )
    await eventually(async () => (await depth()) === 1, 'a request waits in the new queue')
    engine.release()
    await eventually(() => engine.arrived === 2, 'the waiter reaches the engine')
    for (const answer of await Promise.all([first, waiting])) {
      assert.equal(answer.statusCode, 200)
      await answer.body.dump()
    }
  })
})

describe('a shutdown while requests wait in admission', () => {
  test('answers those still waiting when the drain runs out 503 LB_ERR_SHED with Retry-After, in the API’s shape, rather than cutting them', async (t) => {
    const { engine, aya, first, waiting } = await queueBehindHeldPrompt(t, 'fleet')
    // Its prompt went upstream and was held there: it is cut with the connection.
    await closeAndExpectShed(aya, engine, first, waiting)
    assert.equal(engine.arrived, 1)
  })

  test('answers the prompts the prefill pacer still holds when the drain runs out 503 LB_ERR_SHED with Retry-After, rather than cutting them', async (t) => {
    // No admission block: only the aya policy's pacer holds prompts back.
    const { engine, aya } = await startHeldEngine(t, 'fleet', undefined)
    // About 5 s of predicted prefill: the pacer holds what follows for that long.
    const first = postLoremChat(aya.url, 60_000, { stream: true })
    await engine.arrivals(1)
    const pending = async () =>
      metricSample(
        await adminMetrics(aya),
        'aya_endpoint_pending_prefill_tokens',
        `upstream="fleet",endpoint="${new URL(engine.url).host}"`,
      ) ?? 0
    const onePrompt = await pending()
    assert.ok(onePrompt > 0)
    const held = Array.from({ length: 2 }, (_, i) => chat(aya.url, i === 0))
    // Each 3000-word prompt is at least 3000 tokens.
    await eventually(async () => (await pending()) >= onePrompt + 6000, 'two prompts held')
    await closeAndExpectShed(aya, engine, first, held)
    // Never sent: the engine saw only the first.
    assert.equal(engine.arrived, 1)
  })
})
