import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { adminMetrics, type RunningAya, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { endpointIdOf, startSimEngines } from '../helpers/sim-engines.ts'

/** One chat turn of a long prompt; returns the endpoint Aya chose. */
async function chat(aya: RunningAya, content: string): Promise<string> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama', max_tokens: 2, messages: [{ role: 'user', content }] }),
  })
  assert.equal(res.statusCode, 200)
  await res.body.dump()
  return String(res.headers['x-aya-endpoint'])
}

const decisions = async (aya: RunningAya, branch: string): Promise<number> => {
  const line = (await adminMetrics(aya))
    .split('\n')
    .find((l) => l.startsWith(`aya_scheduler_decisions_total{policy="aya",branch="${branch}"}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

describe('an engine that restarts', () => {
  test('loses what the aya policy believed it cached: the next turn is placed cold, not warm', async (t) => {
    const engines = await startSimEngines(t, [H100_LLAMA3_8B, H100_LLAMA3_8B], 20)
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models', debugHeaders: true }],
      models: { llama: { deployments: [{ upstream: 'fleet', model: H100_LLAMA3_8B.modelName }] } },
      upstreams: {
        fleet: {
          policy: 'aya',
          engineMetrics: { scrapeIntervalMs: 50 },
          endpoints: engines.map((engine) => ({ url: engine.url })),
        },
      },
    })
    t.after(() => aya.close())
    const prompt = 'the same long document '.repeat(200)
    const first = await chat(aya, prompt)
    assert.equal(await chat(aya, prompt), first, 'the second turn goes where the prompt is cached')
    const warmBefore = await decisions(aya, 'warm')
    const coldBefore = await decisions(aya, 'cold')
    assert.ok(warmBefore >= 1, `warm placements: ${warmBefore}`)

    // The engine that holds the prompt restarts on its port: a new process, an empty cache.
    const at = engines.findIndex((engine) => endpointIdOf(engine) === first)
    const old = engines[at]!
    await old.close()
    const restarted: EngineServer = await startEngineServer(
      { profile: H100_LLAMA3_8B, seed: 9, port: old.port },
      { clock: createScaledClock({ speedup: 20 }) },
    )
    t.after(() => restarted.close())
    await eventually(
      () => aya.logs.some((l) => String(l.msg).startsWith('engine restarted')),
      'the restart seen in a scrape',
      10_000,
    )
    const line = aya.logs.find((l) => String(l.msg).startsWith('engine restarted'))!
    assert.equal(line.endpoint, first)

    await chat(aya, prompt)
    assert.equal(await decisions(aya, 'warm'), warmBefore, 'no endpoint is believed warm')
    assert.equal(await decisions(aya, 'cold'), coldBefore + 1)
  })
})
