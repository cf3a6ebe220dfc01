import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'

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
