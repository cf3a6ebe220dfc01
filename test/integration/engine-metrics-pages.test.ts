import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { createEngineMetricsScraper } from '../../src/llm/engine-metrics-scraper.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startSimEngines } from '../helpers/sim-engines.ts'

/** An engine that serves a crafted `/metrics` page and answers everything else 200. */
interface CraftedEngine {
  readonly url: string
  /** `/metrics` requests received so far. */
  readonly scrapes: number
  /** Other requests received so far: the traffic routed here. */
  readonly served: number
}

async function startCraftedEngine(
  t: Pick<TestContext, 'after'>,
  metrics: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<CraftedEngine> {
  let scrapes = 0
  let served = 0
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/metrics')) {
      scrapes++
      metrics(req, res)
      return
    }
    served++
    req.resume()
    res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get scrapes() {
      return scrapes
    },
    get served() {
      return served
    },
  }
}

const page = (lines: readonly string[]) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
  res.end(`${lines.join('\n')}\n`)
}

/**
 * Aya under `policy` over the two engines, scraping every 20 ms and keeping each reading for a
 * minute (the pages never change, and a loaded machine must not age them into a coin toss); once
 * both have been read, `count` requests go through it one after another. The traffic each got.
 */
async function routeThrough(
  t: TestContext,
  policy: string,
  pages: readonly [readonly string[], readonly string[]],
  count: number,
): Promise<[number, number]> {
  const engines = await Promise.all(pages.map((lines) => startCraftedEngine(t, page(lines))))
  const aya = await startAyaTo(t, {
    policy,
    engineMetrics: { scrapeIntervalMs: 20, staleAfterMs: 60_000 },
    endpoints: engines.map((engine) => ({ url: engine.url })),
  })
  // A second scrape of a target starts only once its first has been read.
  await eventually(() => engines.every((engine) => engine.scrapes >= 2), 'both engines read')
  for (let i = 0; i < count; i++) {
    const res = await request(`${aya.url}/r${i}`)
    assert.equal(res.statusCode, 200)
    await res.body.dump()
  }
  return [engines[0]!.served, engines[1]!.served]
}

describe('engine metrics pages as engines really serve them', () => {
  // Engine 0's page leaves out one gauge the llm-d-prefix-load scorers read; engine 1 publishes
  // it, with a load that scores worse than the missing gauge read as 0 would. An engine whose
  // load is unknown goes unscored on that quantity, as a stale one does: the traffic goes to 1.
  const cases: ReadonlyArray<{
    readonly name: string
    readonly pages: readonly [readonly string[], readonly string[]]
  }> = [
    {
      name: 'a vLLM page without num_requests_waiting',
      pages: [
        [
          'vllm:num_requests_running{model_name="m",engine="0"} 40',
          'vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.9',
        ],
        [
          'vllm:num_requests_running{model_name="m",engine="0"} 8',
          'vllm:num_requests_waiting{model_name="m",engine="0"} 10',
          'vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.5',
        ],
      ],
    },
    {
      name: 'a vLLM V0 page without gpu_cache_usage_perc',
      pages: [
        [
          'vllm:num_requests_running{model_name="m"} 40',
          'vllm:num_requests_waiting{model_name="m"} 0',
        ],
        [
          'vllm:num_requests_running{model_name="m"} 8',
          'vllm:num_requests_waiting{model_name="m"} 0',
          'vllm:gpu_cache_usage_perc{model_name="m"} 0.2',
        ],
      ],
    },
    {
      name: 'an SGLang page without num_queue_reqs',
      pages: [
        ['sglang:num_running_reqs{model_name="m",tp_rank="0"} 40', 'sglang:token_usage 0.9'],
        [
          'sglang:num_running_reqs{model_name="m",tp_rank="0"} 8',
          'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 10',
          'sglang:token_usage{model_name="m",tp_rank="0"} 0.5',
        ],
      ],
    },
    {
      name: 'an SGLang page without token_usage',
      pages: [
        [
          'sglang:num_running_reqs{model_name="m",tp_rank="0"} 40',
          'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 0',
        ],
        [
          'sglang:num_running_reqs{model_name="m",tp_rank="0"} 8',
          'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 0',
          'sglang:token_usage{model_name="m",tp_rank="0"} 0.2',
        ],
      ],
    },
  ]
  for (const { name, pages } of cases) {
    test(`llm-d-prefix-load scores ${name} as unknown on that gauge, never as an empty engine`, async (t) => {
      assert.deepEqual(await routeThrough(t, 'llm-d-prefix-load', pages, 8), [0, 8])
    })
  }
})

/** The simulated engine's own `/metrics` page, as it serves it. */
async function enginePage(url: string): Promise<string> {
  return (await request(`${url}/metrics`)).body.text()
}

/**
 * What a scraper reads from `door`, beside what it reads from `engine` itself (a reading of the
 * same idle engine, its stamp aside). `maxBodyBytes` as given.
 */
async function readThrough(
  door: CraftedEngine,
  engine: { readonly url: string },
  maxBodyBytes?: number,
) {
  const failed: string[] = []
  const scraper = createEngineMetricsScraper(
    { intervalMs: 1000, maxBodyBytes },
    { clock: createManualClock(), onScrapeFailed: (id) => failed.push(id) },
  )
  scraper.setTargets([
    { id: 'door', origin: door.url },
    { id: 'engine', origin: engine.url },
  ])
  await scraper.scrapeNow()
  const readings = { door: scraper.get('door'), engine: scraper.get('engine'), failed }
  scraper.close()
  assert.ok(readings.engine?.numGpuBlocks, 'the engine itself is read, its layout included')
  return readings
}

describe('engine metrics pages served compressed or moved, as exporters serve them', () => {
  test('asks for gzip as Prometheus does, and reads a gzip page as the engine’s own', async (t) => {
    const [engine] = await startSimEngines(t, [H100_LLAMA3_8B], 1)
    const asked: string[] = []
    // As prometheus_client does: compressed only when the scraper says it accepts gzip.
    const door = await startCraftedEngine(t, async (req, res) => {
      asked.push(String(req.headers['accept-encoding']))
      const text = await enginePage(engine!.url)
      if (!/\bgzip\b/.test(String(req.headers['accept-encoding']))) return void res.end(text)
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' })
      res.end(gzipSync(text))
    })
    const { door: reading, engine: direct, failed } = await readThrough(door, engine!)
    assert.deepEqual(asked, ['gzip'])
    assert.deepEqual(reading && { ...reading, atMs: 0 }, { ...direct!, atMs: 0 })
    assert.deepEqual(failed, [])
  })

  test('reads a page gzipped unasked, streamed without a length', async (t) => {
    const [engine] = await startSimEngines(t, [H100_LLAMA3_8B], 1)
    const door = await startCraftedEngine(t, async (_req, res) => {
      const packed = gzipSync(await enginePage(engine!.url))
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' })
      // Two writes: chunked, the decoder sees the stream in pieces.
      res.write(packed.subarray(0, 100))
      res.end(packed.subarray(100))
    })
    const { door: reading, engine: direct } = await readThrough(door, engine!)
    assert.deepEqual(reading && { ...reading, atMs: 0 }, { ...direct!, atMs: 0 })
  })

  test('holds a gzip page to maxBodyBytes decoded: a small body that inflates past it is a failed scrape', async (t) => {
    const [engine] = await startSimEngines(t, [H100_LLAMA3_8B], 1)
    const capBytes = 256 * 1024
    let padBytes = 0
    const door = await startCraftedEngine(t, async (_req, res) => {
      // Comment lines compress about a thousandfold: well under the cap on the wire.
      const text = `${await enginePage(engine!.url)}# ${'x'.repeat(padBytes)}\n`
      const packed = gzipSync(text)
      assert.ok(packed.length < capBytes)
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': packed.length })
      res.end(packed)
    })
    padBytes = 4 * capBytes
    const over = await readThrough(door, engine!, capBytes)
    assert.equal(over.door, undefined)
    assert.deepEqual(over.failed, ['door'])
    padBytes = capBytes / 4
    const under = await readThrough(door, engine!, capBytes)
    assert.deepEqual(under.door && { ...under.door, atMs: 0 }, { ...under.engine!, atMs: 0 })
  })

  test('follows redirects, /metrics to /metrics/ and on, as Prometheus does', async (t) => {
    const [engine] = await startSimEngines(t, [H100_LLAMA3_8B], 1)
    const paths: string[] = []
    const door = await startCraftedEngine(t, async (req, res) => {
      paths.push(req.url!)
      if (req.url === '/metrics') {
        res.writeHead(301, { location: '/metrics/' })
        return void res.end()
      }
      if (req.url === '/metrics/') {
        res.writeHead(307, { location: `http://${req.headers.host}/metrics/v2` })
        return void res.end('moved')
      }
      res.end(await enginePage(engine!.url))
    })
    const { door: reading, engine: direct } = await readThrough(door, engine!)
    assert.deepEqual(paths, ['/metrics', '/metrics/', '/metrics/v2'])
    assert.deepEqual(reading && { ...reading, atMs: 0 }, { ...direct!, atMs: 0 })
  })

  test('gives up a redirect loop after 10 redirects, as a failed scrape', async (t) => {
    const [engine] = await startSimEngines(t, [H100_LLAMA3_8B], 1)
    const door = await startCraftedEngine(t, (req, res) => {
      res.writeHead(302, { location: req.url === '/metrics' ? '/metrics/' : '/metrics' })
      res.end()
    })
    const { door: reading, failed } = await readThrough(door, engine!)
    assert.equal(reading, undefined)
    assert.deepEqual(failed, ['door'])
    assert.equal(door.scrapes, 11, 'the first ask and 10 redirects')
  })
})

describe('engine metrics failures in the log', () => {
  test('says why an engine gives no reading, once however many scrapes fail, and when it comes back', async (t) => {
    // SGLang serves /metrics only with --enable-metrics: the counter alone says scrapes fail, not
    // that the engine has no page to serve.
    let enabled = false
    const engine = await startCraftedEngine(t, (req, res) => {
      if (!enabled) {
        res.writeHead(404)
        res.end()
        return
      }
      page(['sglang:num_running_reqs 0', 'sglang:num_queue_reqs 0'])(req, res)
    })
    const aya = await startAyaTo(t, {
      policy: 'aya',
      engineMetrics: { scrapeIntervalMs: 20 },
      endpoints: [{ url: engine.url, id: 'sglang-0' }],
    })
    const scrapeLines = () =>
      aya.logs.filter((line) => String(line.msg).startsWith('engine metrics'))
    await eventually(() => engine.scrapes >= 10, 'ten scrapes refused')
    assert.deepEqual(
      scrapeLines().map((line) => [line.level, line.upstream, line.endpoint, line.reason]),
      [['warn', 'u', 'sglang-0', 'status 404']],
    )
    enabled = true
    await eventually(() => scrapeLines().length === 2, 'the recovery logged')
    assert.deepEqual(
      scrapeLines().map((line) => [line.level, String(line.msg)]),
      [
        ['warn', 'engine metrics scrape failed: its readings count as unknown once stale'],
        ['info', 'engine metrics read again'],
      ],
    )
  })
})
