import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { createSimFleet } from '../../src/sim/fleet.ts'
import { adminMetrics, metricSample, type RunningAya, startAya } from '../helpers/aya.ts'
import { postLoremChat } from '../helpers/lorem-chat.ts'

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct'
const MOVED = 'policy="aya",branch="moved"'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A document the engines have cached from traffic that bypassed Aya: Aya cannot know it. */
const KNOWN_TO_ENGINES = Array.from({ length: 7000 }, (_, i) => `w${i % 97}`).join(' ')

const chatBody = (content: string) =>
  JSON.stringify({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content }] })

/**
 * Aya (policy `aya`, its prefill pacing on, debug headers) in front of two real simulated A100
 * engines (about 12k prompt tokens a second), both of which already hold
 * KNOWN_TO_ENGINES in their prefix caches.
 */
async function fleetWithHiddenCache(t: TestContext, moveToIdle: boolean) {
  const fleet = await createSimFleet({ replicas: 2, profile: 'a100-llama3-8b', speedup: 1 })
  t.after(() => fleet.close())
  for (const url of fleet.urls) {
    const answer = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody(KNOWN_TO_ENGINES),
    })
    assert.equal(answer.statusCode, 200)
    await answer.body.dump()
  }
  const aya = await startAya({
    log: { access: true },
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models', debugHeaders: true }],
    models: { llama: { deployments: [{ upstream: 'fleet', model: MODEL }] } },
    upstreams: {
      fleet: {
        policy: 'aya',
        policyOptions: { pacingMoveToIdle: moveToIdle },
        endpoints: fleet.urls.map((url) => ({ url })),
      },
    },
  })
  t.after(() => aya.close())
  return aya
}

/**
 * A long cold prompt goes to one engine (X); a longer prompt that Aya believes cold, but whose
 * first 7,000 words the other engine (Y) holds cached, goes to Y; then a cold prompt arrives, and
 * Aya, expecting X to finish first, holds it for X. Y is done in about a tenth of a second instead. Answers where the long
 * prompt and the held one were served.
 */
async function heldWhileAnotherGoesIdle(aya: RunningAya) {
  const long = postLoremChat(aya.url, 4000)
  await sleep(20)
  const hidden = request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: 4,
      messages: [{ role: 'user', content: `${KNOWN_TO_ENGINES} ${'and more '.repeat(700)}` }],
    }),
  })
  await sleep(20)
  const held = postLoremChat(aya.url, 3000)
  const answers = await Promise.all([long, hidden, held])
  for (const answer of answers) {
    assert.equal(answer.statusCode, 200)
    await answer.body.dump()
  }
  const endpoint = (i: number) => String(answers[i]!.headers['x-aya-endpoint'])
  return { longOn: endpoint(0), hiddenOn: endpoint(1), heldOn: endpoint(2) }
}

describe('prefill pacing moves a held cold prompt to an engine that went idle', () => {
  test('the cold prompt held for the busy engine is served by the one that finished early, in one attempt', async (t) => {
    const aya = await fleetWithHiddenCache(t, true)
    const { longOn, hiddenOn, heldOn } = await heldWhileAnotherGoesIdle(aya)
    assert.notEqual(longOn, hiddenOn)
    assert.equal(heldOn, hiddenOn)
    const metrics = await adminMetrics(aya)
    assert.equal(metricSample(metrics, 'aya_scheduler_decisions_total', MOVED), 1)
    // Nothing was sent to the busy engine: one attempt, no retry.
    const access = aya.logs.filter((line) => line.msg === 'access' && line.status === 200)
    assert.ok(
      access.every((line) => line.attempts === 1),
      JSON.stringify(access),
    )
    assert.doesNotMatch(metrics, /^aya_upstream_retries_total\{[^}]*\} [1-9]/m, 'no retry counted')
  })

  test('with pacingMoveToIdle off, it waits for the engine it was placed on', async (t) => {
    const aya = await fleetWithHiddenCache(t, false)
    const { longOn, hiddenOn, heldOn } = await heldWhileAnotherGoesIdle(aya)
    assert.notEqual(longOn, hiddenOn)
    assert.equal(heldOn, longOn)
    assert.equal(
      metricSample(await adminMetrics(aya), 'aya_scheduler_decisions_total', MOVED),
      undefined,
    )
  })
})
