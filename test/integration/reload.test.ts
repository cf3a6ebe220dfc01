import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { parseConfigObject } from '../../src/config/load.ts'
import { startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { closedPort, startNamedUpstream, startUpstream } from '../helpers/upstreams.ts'

describe('reload', () => {
  test('warns that a changed admin address or port takes effect at the next start, and keeps serving the admin where it is bound', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const raw = (adminPort: number) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: adminPort },
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: { web: { endpoints: [{ url: upstream.url }] } },
    })
    const aya = await startAya(raw(0))
    t.after(() => aya.close())
    aya.aya.reload(parseConfigObject(raw(await closedPort()), {}))
    const warning = aya.logs.find((l) => l.level === 'warn' && /admin/.test(String(l.msg)))
    assert.ok(warning, 'a warning names the admin change')
    assert.match(String(warning.msg), /next start/)
    assert.equal((await request(`${aya.adminUrl}/ready`)).statusCode, 200)
  })

  test('close() without a deadline drains for the reloaded shutdown.drainTimeoutMs, not the one it started with', async (t) => {
    // Never answers: only the drain deadline ends the request.
    const upstream = await startUpstream(() => {})
    t.after(() => upstream.close())
    const raw = (drainTimeoutMs: number) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      shutdown: { drainTimeoutMs },
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: { web: { endpoints: [{ url: upstream.url }] } },
    })
    const aya = await startAya(raw(60_000))
    aya.aya.reload(parseConfigObject(raw(200), {}))
    const pending = request(`${aya.url}/hang`).catch(() => undefined)
    await eventually(() => upstream.requests.length === 1, 'the request upstream')
    const startedAt = performance.now()
    await aya.aya.close()
    const tookMs = performance.now() - startedAt
    assert.ok(tookMs < 5000, `closed after ${Math.round(tookMs)} ms`)
    await pending
  })

  /** A route `/v1` to the simulated upstream `fleet` (when `sim` is given) and `/` to `web`. */
  const withSim = (webUrl: string, sim?: Record<string, unknown>) => ({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    routes: [
      ...(sim ? [{ match: { pathPrefix: '/v1' }, upstream: 'fleet' }] : []),
      { match: { pathPrefix: '/' }, upstream: 'web' },
    ],
    upstreams: {
      web: { endpoints: [{ url: webUrl }] },
      ...(sim ? { fleet: { sim, engineMetrics: false } } : {}),
    },
  })
  const SIM = { replicas: 2, profile: 'h100-llama3-8b', speedup: 100 }
  const chat = (url: string) =>
    request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 }),
    })
  /** The engine URLs of each fleet Aya logged as started, in order. */
  const startedFleets = (logs: ReadonlyArray<Record<string, unknown>>) =>
    logs.filter((l) => l.msg === 'simulated fleet started').map((l) => l.urls as string[])
  const isDown = (url: string) =>
    request(`${url}/health`).then(
      async (res) => {
        await res.body.dump()
        return false
      },
      () => true,
    )

  test('starts the fleet of a sim upstream that a reload adds, as a start would, and serves from it', async (t) => {
    const upstream = await startNamedUpstream('web')
    t.after(() => upstream.close())
    const aya = await startAya(withSim(upstream.url))
    t.after(() => aya.close())
    aya.aya.reload(parseConfigObject(withSim(upstream.url, SIM), {}))
    await eventually(
      () => aya.aya.config.upstreams.fleet?.endpoints.length === SIM.replicas,
      'the new fleet as the group endpoints',
    )
    const res = await chat(aya.url)
    const body = (await res.body.json()) as { object?: string }
    assert.equal(res.statusCode, 200)
    assert.equal(body.object, 'chat.completion')
  })

  test('shuts down the fleet of a sim upstream that a reload removes', async (t) => {
    const upstream = await startNamedUpstream('web')
    t.after(() => upstream.close())
    const aya = await startAya(withSim(upstream.url, SIM))
    t.after(() => aya.close())
    const [urls] = startedFleets(aya.logs)
    assert.equal(urls?.length, SIM.replicas)
    aya.aya.reload(parseConfigObject(withSim(upstream.url), {}))
    for (const url of urls!) await eventually(() => isDown(url), `${url} shut down`)
  })

  test('lets a request in flight on a removed sim fleet finish before shutting the fleet down', async (t) => {
    const upstream = await startNamedUpstream('web')
    t.after(() => upstream.close())
    // Real time: 300 output tokens take the engine well over 100 ms.
    const aya = await startAya(withSim(upstream.url, { ...SIM, speedup: 1 }))
    t.after(() => aya.close())
    const [urls] = startedFleets(aya.logs)
    const long = request(`${aya.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 300,
        ignore_eos: true,
      }),
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    aya.aya.reload(parseConfigObject(withSim(upstream.url), {}))
    const res = await long
    const body = (await res.body.json()) as { usage?: { completion_tokens?: number } }
    assert.equal(res.statusCode, 200)
    assert.equal(body.usage?.completion_tokens, 300)
    for (const url of urls!) await eventually(() => isDown(url), `${url} shut down`)
  })

  test('replaces the fleet of a sim upstream whose sim block a reload changes', async (t) => {
    const upstream = await startNamedUpstream('web')
    t.after(() => upstream.close())
    const aya = await startAya(withSim(upstream.url, { ...SIM, replicas: 1 }))
    t.after(() => aya.close())
    const [before] = startedFleets(aya.logs)
    aya.aya.reload(parseConfigObject(withSim(upstream.url, SIM), {}))
    await eventually(
      () => aya.aya.config.upstreams.fleet?.endpoints.length === SIM.replicas,
      'the resized fleet as the group endpoints',
    )
    assert.deepEqual(
      aya.aya.config.upstreams.fleet?.endpoints.map((e) => e.url),
      startedFleets(aya.logs)[1],
    )
    await eventually(() => isDown(before![0]!), 'the old fleet shut down')
    assert.equal((await chat(aya.url)).statusCode, 200)
  })
})
