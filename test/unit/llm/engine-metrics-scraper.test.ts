import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createEngineMetricsScraper } from '../../../src/llm/engine-metrics-scraper.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const METRICS = `# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0"} 3
vllm:num_requests_waiting{engine="0"} 2
vllm:kv_cache_usage_perc{engine="0"} 0.25
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="1000"} 1
`

describe('engine metrics scraper', () => {
  let server: Server
  let origin = ''
  let status = 200
  before(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/metrics' ? status : 404, { 'content-type': 'text/plain' })
      res.end(METRICS)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('reads a real /metrics, ages it out, and keeps the KV layout after it goes stale', async () => {
    status = 200
    const clock = createManualClock()
    const scraper = createEngineMetricsScraper({ intervalMs: 1000 }, { clock })
    scraper.setTargets([{ id: 'a', origin }])
    await scraper.scrapeNow()
    assert.equal(scraper.get('a')?.running, 3)
    assert.equal(scraper.get('a')?.waiting, 2)
    assert.equal(scraper.get('a')?.kvUsage, 0.25)
    assert.deepEqual(scraper.kvLayout('a'), { blockSize: 16, numGpuBlocks: 1000 })

    status = 500
    clock.advance(3001)
    await scraper.scrapeNow()
    assert.equal(scraper.get('a'), undefined, 'stale load is unknown, never idle')
    assert.deepEqual(scraper.kvLayout('a'), { blockSize: 16, numGpuBlocks: 1000 })

    scraper.setTargets([])
    assert.equal(scraper.kvLayout('a'), undefined, 'a removed target forgets its layout')
    scraper.close()
  })
})
