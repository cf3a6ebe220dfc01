import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../src/config/load.ts'
import { adminMetrics, metricSample, startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'

/** An engine that only answers `/metrics`, counting the scrapes. */
async function metricsServer(): Promise<{ url: string; scrapes: number; close(): Promise<void> }> {
  const state = { url: '', scrapes: 0, close: async () => {} }
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') state.scrapes++
    res.end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return state
}

const config = (upstreams: Record<string, unknown>) => ({
  routes: [{ match: { pathPrefix: '/' }, upstream: Object.keys(upstreams)[0] }],
  upstreams,
})

describe('engine metrics across a reload', () => {
  test('switching an upstream to aya starts scraping it, and a removed upstream stops being scraped', async (t) => {
    const a = await metricsServer()
    const b = await metricsServer()
    t.after(() => Promise.all([a.close(), b.close()]))
    const aya = await startAya(
      config({
        u: { policy: 'round-robin', endpoints: [{ url: a.url }] },
        v: { policy: 'aya', engineMetrics: { scrapeIntervalMs: 20 }, endpoints: [{ url: b.url }] },
      }),
    )
    t.after(() => aya.close())
    await eventually(() => b.scrapes >= 5, 'v scraped')
    assert.equal(a.scrapes, 0, 'a round-robin upstream is not scraped')

    aya.aya.reload(
      parseConfigObject(
        {
          listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
          admin: { address: '127.0.0.1', port: 0 },
          ...config({
            u: {
              policy: 'aya',
              engineMetrics: { scrapeIntervalMs: 20 },
              endpoints: [{ url: a.url }],
            },
          }),
        },
        {},
      ),
    )
    const bAtReload = b.scrapes
    await eventually(() => a.scrapes >= 10, 'u scraped once it runs aya')
    assert.ok(b.scrapes <= bAtReload + 1, `v scraped ${b.scrapes - bAtReload} times after removal`)
  })

  test('exports an engine-metrics failure count of 0 for each scraped endpoint before any failure, and drops it once a reload removes the endpoint', async (t) => {
    const a = await metricsServer()
    const b = await metricsServer()
    t.after(() => Promise.all([a.close(), b.close()]))
    // A minute's staleness gives each scrape 500 ms: the 60 ms of a 20 ms interval's default
    // failed the first scrape of a busy machine now and then.
    const scraped = (url: string) => ({
      v: {
        policy: 'aya',
        engineMetrics: { scrapeIntervalMs: 20, staleAfterMs: 60_000 },
        endpoints: [{ url }],
      },
    })
    const aya = await startAya({ log: { access: false }, ...config(scraped(a.url)) })
    t.after(() => aya.close())
    const failures = async (url: string) =>
      metricSample(
        await adminMetrics(aya),
        'aya_endpoint_engine_metrics_failures_total',
        `upstream="v",endpoint="${url.slice('http://'.length)}"`,
      )
    await eventually(() => a.scrapes >= 1, 'a scraped')
    assert.equal(await failures(a.url), 0)

    aya.aya.reload(
      parseConfigObject(
        {
          listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
          admin: { address: '127.0.0.1', port: 0 },
          log: { access: false },
          ...config(scraped(b.url)),
        },
        {},
      ),
    )
    assert.equal(await failures(a.url), undefined, 'the removed endpoint’s series is gone')
    assert.equal(await failures(b.url), 0)
  })
})
