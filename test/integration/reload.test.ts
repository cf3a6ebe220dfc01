import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { parseConfigObject } from '../../src/config/load.ts'
import { adminMetrics, metricSample, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import {
  closedPort,
  startNamedUpstream,
  startUpstream,
  type TestUpstream,
} from '../helpers/upstreams.ts'

describe('reload', () => {
  test('drops the request series of a route, upstream and endpoint a reload removed once their requests are done, and keeps the rest', async (t) => {
    const kept = await startNamedUpstream('kept')
    const gone = await startNamedUpstream('gone')
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const slow = await startUpstream((req, res) => {
      if (req.url === '/b/held') void held.then(() => res.end('slow'))
      else res.end('fast')
    })
    t.after(() => Promise.all([kept.close(), gone.close(), slow.close()]))
    const configOf = (routes: Record<string, string>, upstreams: Record<string, string[]>) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      log: { access: false },
      routes: Object.entries(routes).map(([name, upstream]) => ({
        name,
        match: { pathPrefix: `/${name}` },
        upstream,
      })),
      upstreams: Object.fromEntries(
        Object.entries(upstreams).map(([name, urls]) => [
          name,
          { policy: 'round-robin', endpoints: urls.map((url) => ({ url })) },
        ]),
      ),
    })
    const aya = await startAya(
      configOf({ a: 'a', b: 'b' }, { a: [kept.url, gone.url], b: [slow.url] }),
    )
    t.after(() => aya.close())
    for (const path of ['/a', '/a', '/b']) await (await request(`${aya.url}${path}`)).body.dump()
    const inFlight = request(`${aya.url}/b/held`)
    await eventually(() => slow.requests.length === 2, 'the held request reached its upstream')
    const count = async (route: string, upstream: string, endpoint: TestUpstream) =>
      metricSample(
        await adminMetrics(aya),
        'aya_requests_total',
        `route="${route}",upstream="${upstream}",endpoint="${new URL(endpoint.url).host}",status="200"`,
      )

    aya.aya.reload(parseConfigObject(configOf({ a: 'a' }, { a: [kept.url] }), {}))
    assert.equal(await count('b', 'b', slow), 1, 'kept while a request to it is in flight')
    release()
    await (await inFlight).body.dump()
    await eventually(
      async () => (await count('b', 'b', slow)) === undefined,
      'the removed route’s series gone',
    )
    const text = await adminMetrics(aya)
    assert.equal(await count('a', 'a', kept), 1, 'the kept endpoint’s series stays')
    assert.equal(await count('a', 'a', gone), undefined, 'the removed endpoint’s series is gone')
    assert.equal(metricSample(text, 'aya_response_bytes_total', 'route="b"'), undefined)
    assert.equal(metricSample(text, 'aya_response_bytes_total', 'route="a"') !== undefined, true)
    assert.equal(
      metricSample(text, 'aya_request_duration_seconds_count', 'route="a",upstream="a"'),
      2,
    )
    assert.equal(
      metricSample(text, 'aya_upstream_response_seconds_count', 'upstream="b"'),
      undefined,
    )
  })

  test('keeps a removed route’s request series while a request on it is in flight, though its upstream stays', async (t) => {
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const upstream = await startUpstream((req, res) => {
      if (req.url === '/b/held') void held.then(() => res.end('slow'))
      else res.end('fast')
    })
    t.after(() => upstream.close())
    const configOf = (routes: string[]) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      log: { access: false },
      routes: routes.map((name) => ({ name, match: { pathPrefix: `/${name}` }, upstream: 'u' })),
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    const aya = await startAya(configOf(['a', 'b']))
    t.after(() => aya.close())
    await (await request(`${aya.url}/b`)).body.dump()
    const inFlight = request(`${aya.url}/b/held`)
    await eventually(() => upstream.requests.length === 2, 'the held request reached its upstream')
    const count = async () =>
      metricSample(
        await adminMetrics(aya),
        'aya_requests_total',
        `route="b",upstream="u",endpoint="${new URL(upstream.url).host}",status="200"`,
      )

    // The upstream and its pool stay: only the requests in flight say route b is still in use.
    aya.aya.reload(parseConfigObject(configOf(['a']), {}))
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(await count(), 1, 'kept while a request on it is in flight')
    release()
    await (await inFlight).body.dump()
    await eventually(async () => (await count()) === undefined, 'the removed route’s series gone')
  })

  test('drops the LLM time-to-first-token and token series of a model and a route a reload removed, and keeps the rest', async (t) => {
    const upstream = await startUpstream((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n')
        res.write('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n')
        res.end('data: [DONE]\n\n')
      })
    })
    t.after(() => upstream.close())
    const configOf = (routes: string[], models: string[]) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      log: { access: false },
      routes: routes.map((name) => ({
        name,
        match: { pathPrefix: `/${name}` },
        gateway: 'models',
        rewrite: { pathPrefix: '/' },
      })),
      models: Object.fromEntries(
        models.map((name) => [name, { deployments: [{ upstream: 'u' }] }]),
      ),
      upstreams: { u: { endpoints: [{ url: upstream.url }], engineMetrics: false } },
    })
    const aya = await startAya(configOf(['a', 'b'], ['m', 'gone-*']))
    t.after(() => aya.close())
    for (const [route, model] of [
      ['a', 'm'],
      ['a', 'gone-1'],
      ['b', 'm'],
    ]) {
      const res = await request(`${aya.url}/${route}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'x' }] }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
    const series = async (route: string, model: string) => {
      const text = await adminMetrics(aya)
      const labels = `route="${route}",model="${model}"`
      return [
        metricSample(text, 'aya_llm_ttft_seconds_count', labels),
        metricSample(text, 'aya_llm_tokens_total', `${labels},kind="prompt"`),
      ]
    }
    await eventually(
      async () => (await series('b', 'm'))[1] === 3,
      'the requests counted before the reload',
    )
    assert.deepEqual(await series('a', 'gone-*'), [1, 3])

    aya.aya.reload(parseConfigObject(configOf(['a'], ['m']), {}))
    await eventually(
      async () => (await series('b', 'm'))[0] === undefined,
      'the removed route’s series gone',
    )
    assert.deepEqual(await series('b', 'm'), [undefined, undefined])
    assert.deepEqual(await series('a', 'gone-*'), [undefined, undefined], 'the removed model’s')
    assert.deepEqual(await series('a', 'm'), [1, 3], 'the kept route and model’s series stay')
  })

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

  /** Aya serving `web` and, with `sim`, the fleet; `reloadTo(next)` reloads it to `withSim(web, next)`. */
  async function startWithSim(
    t: { after(fn: () => Promise<void>): void },
    sim?: Record<string, unknown>,
  ) {
    const upstream = await startNamedUpstream('web')
    t.after(() => upstream.close())
    const aya = await startAya(withSim(upstream.url, sim))
    t.after(() => aya.close())
    const reloadTo = (next?: Record<string, unknown>) =>
      aya.aya.reload(parseConfigObject(withSim(upstream.url, next), {}))
    return { aya, reloadTo }
  }

  test('starts the fleet of a sim upstream that a reload adds, as a start would, and serves from it', async (t) => {
    const { aya, reloadTo } = await startWithSim(t)
    reloadTo(SIM)
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
    const { aya, reloadTo } = await startWithSim(t, SIM)
    const [urls] = startedFleets(aya.logs)
    assert.equal(urls?.length, SIM.replicas)
    reloadTo()
    for (const url of urls!) await eventually(() => isDown(url), `${url} shut down`)
  })

  test('lets a request in flight on a removed sim fleet finish before shutting the fleet down', async (t) => {
    // Real time: 300 output tokens take the engine well over 100 ms.
    const { aya, reloadTo } = await startWithSim(t, { ...SIM, speedup: 1 })
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
    reloadTo()
    const res = await long
    const body = (await res.body.json()) as { usage?: { completion_tokens?: number } }
    assert.equal(res.statusCode, 200)
    assert.equal(body.usage?.completion_tokens, 300)
    for (const url of urls!) await eventually(() => isDown(url), `${url} shut down`)
  })

  test('replaces the fleet of a sim upstream whose sim block a reload changes', async (t) => {
    const { aya, reloadTo } = await startWithSim(t, { ...SIM, replicas: 1 })
    const [before] = startedFleets(aya.logs)
    reloadTo(SIM)
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

  test('keeps serving from the old fleet while the engines of the fleet replacing it still load', async (t) => {
    const { aya, reloadTo } = await startWithSim(t, { ...SIM, replicas: 1 })
    const [before] = startedFleets(aya.logs)
    // 60 s of engine time at speedup 100: the new engines answer 503 for 0.6 s after they listen.
    reloadTo({ ...SIM, startupMs: 60_000 })
    await eventually(() => startedFleets(aya.logs).length === 2, 'the new fleet listening')
    const whileLoading = await chat(aya.url)
    assert.equal(whileLoading.statusCode, 200, await whileLoading.body.text())
    assert.deepEqual(
      aya.aya.config.upstreams.fleet?.endpoints.map((e) => e.url),
      before,
    )
    await eventually(
      () => aya.aya.config.upstreams.fleet?.endpoints.length === SIM.replicas,
      'the new fleet as the group endpoints once loaded',
    )
    const loaded = await chat(aya.url)
    assert.equal(loaded.statusCode, 200, await loaded.body.text())
    await eventually(() => isDown(before![0]!), 'the old fleet shut down')
  })
})
