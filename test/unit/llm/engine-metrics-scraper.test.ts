import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createEngineMetricsScraper } from '../../../src/llm/engine-metrics-scraper.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { eventually } from '../../helpers/eventually.ts'

const METRICS = `# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0"} 3
vllm:num_requests_waiting{engine="0"} 2
vllm:kv_cache_usage_perc{engine="0"} 0.25
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="1000"} 1
`

interface TestServer {
  readonly origin: string
  /** Requests received so far. */
  requests: number
  /** Requests whose connection the client closed before the response ended. */
  abandoned: number
  close(): Promise<void>
}

async function serve(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestServer> {
  const server: Server = createServer((req, res) => {
    state.requests++
    res.on('close', () => {
      if (!res.writableFinished) state.abandoned++
    })
    handle(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const state: TestServer = {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: 0,
    abandoned: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return state
}

/** Answers with headers and then a comment line every 50 ms, never ending. */
function trickle(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  const timer = setInterval(() => res.write('# still here\n'), 50)
  res.on('close', () => clearInterval(timer))
}

describe('engine metrics scraper', () => {
  let status = 200
  let good: TestServer
  let slow: TestServer
  let big: TestServer
  before(async () => {
    good = await serve((req, res) => {
      res.writeHead(req.url === '/metrics' ? status : 404, { 'content-type': 'text/plain' })
      res.end(METRICS)
    })
    slow = await serve(trickle)
    // Well-formed metrics padded past the cap, streamed without a content-length.
    big = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write(METRICS)
      for (let i = 0; i < 64; i++) res.write(`# ${'x'.repeat(1022)}\n`)
      res.end()
    })
  })
  after(async () => {
    await Promise.all([good.close(), slow.close(), big.close()])
  })

  it('reads a real /metrics, ages it out, and keeps the KV layout after it goes stale', async () => {
    status = 200
    const clock = createManualClock()
    const failed: string[] = []
    const scraper = createEngineMetricsScraper(
      { intervalMs: 1000 },
      { clock, onScrapeFailed: (id) => failed.push(id) },
    )
    scraper.setTargets([{ id: 'a', origin: good.origin }])
    await scraper.scrapeNow()
    assert.equal(scraper.get('a')?.running, 3)
    assert.equal(scraper.get('a')?.waiting, 2)
    assert.equal(scraper.get('a')?.kvUsage, 0.25)
    assert.deepEqual(scraper.kvLayout('a'), { blockSize: 16, numGpuBlocks: 1000 })

    assert.equal(scraper.readingAgeMs('a'), 0)
    assert.deepEqual(failed, [])

    status = 500
    clock.advance(3001)
    await scraper.scrapeNow()
    assert.equal(scraper.get('a'), undefined, 'stale load is unknown, never idle')
    assert.deepEqual(scraper.kvLayout('a'), { blockSize: 16, numGpuBlocks: 1000 })
    assert.equal(scraper.readingAgeMs('a'), 3001, 'the reading aged')
    assert.deepEqual(failed, ['a'], 'the failed scrape was told')
    assert.equal(scraper.readingAgeMs('b'), undefined)

    scraper.setTargets([])
    assert.equal(scraper.kvLayout('a'), undefined, 'a removed target forgets its layout')
    scraper.close()
    status = 200
  })

  it('keeps scraping the other targets on time while one is slow, and gives the slow one up at its deadline', async () => {
    const clock = createManualClock()
    const scraper = createEngineMetricsScraper(
      { intervalMs: 1000, staleAfterMs: 10_000, timeoutMs: 5000 },
      { clock },
    )
    const goodBefore = good.requests
    const slowBefore = slow.requests
    scraper.setTargets([
      { id: 'good', origin: good.origin },
      { id: 'slow', origin: slow.origin },
    ])
    await eventually(() => scraper.get('good') !== undefined, 'first reading')
    await eventually(() => slow.requests === slowBefore + 1, 'the slow target asked')
    for (let round = 1; round <= 3; round++) {
      clock.advance(1000)
      await eventually(() => good.requests === goodBefore + 1 + round, `round ${round}`)
      await eventually(() => scraper.get('good')?.atMs === clock.now(), `reading ${round}`)
    }
    assert.equal(slow.requests, slowBefore + 1, 'a target still being read is not asked again')
    assert.equal(slow.abandoned, 0)
    clock.advance(2000)
    await eventually(() => slow.abandoned === 1, 'the slow scrape abandoned at its deadline')
    assert.equal(scraper.get('slow'), undefined)
    scraper.close()
  })

  it('close() abandons the scrapes in flight', async () => {
    const scraper = createEngineMetricsScraper({ intervalMs: 1000 }, { clock: createManualClock() })
    const before = slow.abandoned
    const asked = slow.requests
    scraper.setTargets([{ id: 'slow', origin: slow.origin }])
    await eventually(() => slow.requests === asked + 1, 'the slow target asked')
    scraper.close()
    await eventually(() => slow.abandoned === before + 1, 'the scrape abandoned on close')
  })

  it('abandons a body over maxBodyBytes', async () => {
    const scraper = createEngineMetricsScraper(
      { intervalMs: 1000, maxBodyBytes: 16 * 1024 },
      { clock: createManualClock() },
    )
    scraper.setTargets([
      { id: 'big', origin: big.origin },
      { id: 'good', origin: good.origin },
    ])
    await scraper.scrapeNow()
    assert.equal(scraper.get('big'), undefined)
    assert.equal(scraper.get('good')?.running, 3)
    scraper.close()
  })

  it('abandons a body whose content-length is over maxBodyBytes, and goes on', async () => {
    // The whole page arrives with its headers. Destroyed unread, its body emitted an abort error
    // that nothing listened for, and the process died of it.
    const declared = await serve((_req, res) => {
      const body = `${METRICS}# ${'x'.repeat(2048)}\n`
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
    try {
      const failed: string[] = []
      const scraper = createEngineMetricsScraper(
        { intervalMs: 1000, maxBodyBytes: 1024 },
        { clock: createManualClock(), onScrapeFailed: (id) => failed.push(id) },
      )
      scraper.setTargets([{ id: 'declared', origin: declared.origin }])
      await scraper.scrapeNow()
      // The abort error came a turn of the event loop after the scrape gave up.
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(scraper.get('declared'), undefined)
      assert.deepEqual(failed, ['declared'])
      scraper.close()
    } finally {
      await declared.close()
    }
  })

  it('applies a new interval and staleness on reconfigure, keeping what it read', async () => {
    const clock = createManualClock()
    const scraper = createEngineMetricsScraper({ intervalMs: 1000 }, { clock })
    scraper.setTargets([{ id: 'a', origin: good.origin }])
    await scraper.scrapeNow()
    const asked = good.requests
    scraper.configure({ intervalMs: 5000, staleAfterMs: 500 })
    assert.equal(scraper.kvLayout('a')?.numGpuBlocks, 1000)
    clock.advance(1000)
    assert.equal(scraper.get('a'), undefined, 'stale after the new 500 ms')
    await scraper.scrapeNow()
    assert.equal(good.requests, asked + 1, 'only the explicit scrape: the 1 s tick is gone')
    clock.advance(4000)
    await eventually(() => good.requests === asked + 2, 'the tick at the new 5 s interval')
    scraper.close()
  })

  it('stamps a reading with when it was asked, since the engine counted its queue no earlier', async () => {
    const clock = createManualClock(1000)
    // The engine takes 300 ms to answer (a busy server): prefills that end meanwhile may be in
    // its numbers, so the reading must not pass for one taken when the answer came.
    const lagging = await serve((_req, res) => {
      clock.advance(300)
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(METRICS)
    })
    try {
      const scraper = createEngineMetricsScraper({ intervalMs: 1000 }, { clock })
      scraper.setTargets([{ id: 'a', origin: lagging.origin }])
      await scraper.scrapeNow()
      assert.equal(clock.now(), 1300)
      assert.equal(scraper.get('a')?.atMs, 1000)
      scraper.close()
    } finally {
      await lagging.close()
    }
  })

  it('says why each scrape gave no reading, and tells each reading', async () => {
    const unusable = await serve((_req, res) => res.end('vllm:num_requests_waiting NaN\n'))
    try {
      const clock = createManualClock()
      const failures: Array<{ id: string; reason: string }> = []
      const readings: string[] = []
      const scraper = createEngineMetricsScraper(
        { intervalMs: 1000, timeoutMs: 1000 },
        {
          clock,
          onScrapeFailed: (id, reason) => failures.push({ id, reason }),
          onReading: (id) => readings.push(id),
        },
      )
      status = 404
      scraper.setTargets([
        { id: 'good', origin: good.origin },
        { id: 'unusable', origin: unusable.origin },
        { id: 'refused', origin: 'http://127.0.0.1:1' },
      ])
      await scraper.scrapeNow()
      status = 200
      scraper.setTargets([
        { id: 'good', origin: good.origin },
        { id: 'slow', origin: slow.origin },
      ])
      const slowAsked = slow.requests
      await eventually(() => slow.requests === slowAsked + 1, 'the slow target asked')
      clock.advance(1000)
      await scraper.scrapeNow()
      const reasons = new Map(failures.map((f) => [f.id, f.reason]))
      assert.equal(failures.length, 4)
      assert.equal(reasons.get('good'), 'status 404')
      assert.equal(reasons.get('refused'), 'connect ECONNREFUSED 127.0.0.1:1')
      assert.equal(reasons.get('slow'), 'no page within 1000 ms')
      assert.equal(reasons.get('unusable'), 'no usable load: vllm:num_requests_waiting reads NaN')
      assert.deepEqual(readings, ['good'])
      scraper.close()
    } finally {
      await unusable.close()
    }
  })

  /**
   * One engine whose page carries `vllm:prefix_cache_queries_total` per engine as `counts` says
   * (comma-separated values, or '' to leave it out), and the restarts a scraper tells of it.
   */
  async function restartWatch() {
    let counts = '500'
    const engine = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      const counter = counts
        .split(',')
        .filter((value) => value !== '')
        .map((value, i) => `vllm:prefix_cache_queries_total{engine="${i}"} ${value}\n`)
        .join('')
      res.end(`${METRICS}${counter}`)
    })
    const restarts: string[] = []
    const scraper = createEngineMetricsScraper(
      { intervalMs: 1000 },
      { clock: createManualClock(), onRestart: (id) => restarts.push(id) },
    )
    scraper.setTargets([{ id: 'e', origin: engine.origin }])
    await scraper.scrapeNow()
    return {
      restarts,
      /** Scrapes each page in turn. */
      async read(...pages: string[]) {
        for (const page of pages) {
          counts = page
          await scraper.scrapeNow()
        }
      },
      async close() {
        scraper.close()
        await engine.close()
      },
    }
  }

  it('tells a restart when the prefix-cache lookups count goes down, and not on the first reading or a rise', async () => {
    const watch = await restartWatch()
    try {
      await watch.read('900')
      assert.deepEqual(watch.restarts, [])
      await watch.read('40') // a new process counts from zero
      assert.deepEqual(watch.restarts, ['e'])
      await watch.read('60')
      assert.deepEqual(watch.restarts, ['e'])
    } finally {
      await watch.close()
    }
  })

  it('tells no restart when a page leaves the lookups counter out or overflows it, and compares with the last count it had', async () => {
    const watch = await restartWatch()
    try {
      await watch.read('', '1e308,1e308', '600')
      assert.deepEqual(watch.restarts, [], 'a missing or overflowing counter is no fall')
      await watch.read('', '30')
      assert.deepEqual(watch.restarts, ['e'], 'a fall from the last count the page had')
    } finally {
      await watch.close()
    }
  })

  it('forgets what it read for an id that now names another server', async () => {
    const clock = createManualClock()
    const scraper = createEngineMetricsScraper({ intervalMs: 1000 }, { clock })
    scraper.setTargets([{ id: 'a', origin: good.origin }])
    await scraper.scrapeNow()
    assert.ok(scraper.get('a'))
    scraper.setTargets([{ id: 'a', origin: slow.origin }])
    assert.equal(scraper.get('a'), undefined)
    assert.equal(scraper.kvLayout('a'), undefined)
    scraper.close()
  })

  it('reads a page with a megabyte-long malformed line without holding the event loop, as a failed scrape', async () => {
    const hostile = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`vllm:num_requests_running{${'x'.repeat(2 * 1024 * 1024)}} 1\n`)
    })
    try {
      const failed: string[] = []
      const scraper = createEngineMetricsScraper(
        { intervalMs: 1000 },
        { clock: createManualClock(), onScrapeFailed: (id) => failed.push(id) },
      )
      scraper.setTargets([{ id: 'a', origin: hostile.origin }])
      let longestStallMs = 0
      let last = performance.now()
      const probe = setInterval(() => {
        const now = performance.now()
        longestStallMs = Math.max(longestStallMs, now - last)
        last = now
      }, 5)
      await scraper.scrapeNow()
      clearInterval(probe)
      assert.ok(longestStallMs < 500, `the event loop stalled ${longestStallMs.toFixed(0)} ms`)
      assert.equal(scraper.get('a'), undefined, 'no reading: unknown, never idle')
      assert.deepEqual(failed, ['a'])
      scraper.close()
    } finally {
      await hostile.close()
    }
  })
})
