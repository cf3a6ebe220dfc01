import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import type {
  EngineMetricsScraper,
  EngineMetricsScraperOptions,
  ScrapeTarget,
} from '../../../src/llm/engine-metrics-scraper.ts'
import type { EngineSnapshot } from '../../../src/llm/engine-snapshot.ts'
import { createEngineMetricsScrapers } from '../../../src/proxy/engine-metrics-scrapers.ts'
import { createProxyRuntime, type ProxyRuntime } from '../../../src/proxy/proxy-runtime.ts'
import { createMemoryState } from '../../../src/state/memory-state.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../src/util/random.ts'

interface FakeScraper extends EngineMetricsScraper {
  options: EngineMetricsScraperOptions
  targets: readonly ScrapeTarget[]
  closed: boolean
}

const SNAPSHOT: EngineSnapshot = {
  atMs: 0,
  running: 1,
  waiting: 2,
  kvUsage: 0.5,
  prefixQueriesTotal: 0,
  prefixHitsTotal: 0,
  preemptionsTotal: 0,
  blockSize: 16,
  numGpuBlocks: 100,
}

function setup() {
  const clock = createManualClock()
  const made: FakeScraper[] = []
  const scrapers = createEngineMetricsScrapers({
    clock,
    createScraper(options) {
      const scraper: FakeScraper = {
        options,
        targets: [],
        closed: false,
        get: (id) => (scraper.targets.some((t) => t.id === id) ? SNAPSHOT : undefined),
        kvLayout: () => ({ blockSize: 16, numGpuBlocks: 100 }),
        readingAgeMs: () => undefined,
        setTargets(targets) {
          scraper.targets = targets
        },
        targetIds: () => scraper.targets.map((t) => t.id),
        configure(next) {
          scraper.options = next
        },
        scrapeNow: async () => {},
        close() {
          scraper.closed = true
        },
      }
      made.push(scraper)
      return scraper
    },
  })
  const state = createMemoryState({ clock })
  const deps = {
    clock,
    random: createSeededRandom(1),
    state,
    stickySecret: 's',
    engineMetricsFor: scrapers.sourceFor,
  }
  let runtime: ProxyRuntime | undefined
  const load = (upstreams: Record<string, unknown>) => {
    const config = parseConfigObject(
      {
        listeners: [{ name: 'public', port: 0 }],
        routes: [{ match: { pathPrefix: '/' }, upstream: Object.keys(upstreams)[0] }],
        upstreams,
      },
      {},
    )
    runtime = createProxyRuntime(config, deps, runtime)
    scrapers.sync(runtime.upstreams)
    return runtime
  }
  return { made, scrapers, load, close: () => state.close() }
}

const endpoints = [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }]

describe('engine metrics scrapers', () => {
  test('a reload that switches an upstream to a policy using engine metrics starts its scraper, and its group reads it', async (t) => {
    const { made, scrapers, load, close } = setup()
    t.after(close)
    load({ u: { policy: 'round-robin', endpoints } })
    assert.equal(made.length, 0)
    const source = scrapers.sourceFor('u')
    assert.equal(source.get('127.0.0.1:1'), undefined)
    load({ u: { policy: 'aya', endpoints } })
    assert.equal(made.length, 1)
    assert.deepEqual(
      made[0]!.targets.map((target) => target.id),
      ['127.0.0.1:1', '127.0.0.1:2'],
    )
    assert.equal(source.get('127.0.0.1:1'), SNAPSHOT, 'the source the group was made with')
    assert.equal(source.kvLayout('127.0.0.1:1')?.numGpuBlocks, 100)
  })

  test('closes the scraper of an upstream that was removed or no longer wants metrics', async (t) => {
    const { made, load, close } = setup()
    t.after(close)
    load({ u: { policy: 'aya', endpoints }, v: { policy: 'aya', endpoints } })
    assert.equal(made.length, 2)
    load({ u: { policy: 'round-robin', endpoints } })
    assert.ok(made.every((scraper) => scraper.closed))
  })

  test('never scrapes an upstream whose engineMetrics is false, whatever its policy', async (t) => {
    const { made, load, close } = setup()
    t.after(close)
    load({ u: { policy: 'aya', endpoints, engineMetrics: false } })
    assert.equal(made.length, 0)
    // Turning it off on a reload closes the running scraper.
    load({ u: { policy: 'aya', endpoints } })
    assert.equal(made.length, 1)
    load({ u: { policy: 'aya', endpoints, engineMetrics: false } })
    assert.equal(made[0]!.closed, true)
  })

  test('applies new scrape settings and endpoints to the running scraper', async (t) => {
    const { made, load, close } = setup()
    t.after(close)
    load({ u: { policy: 'aya', endpoints, engineMetrics: { scrapeIntervalMs: 1000 } } })
    load({
      u: {
        policy: 'aya',
        endpoints: [endpoints[0]],
        engineMetrics: { scrapeIntervalMs: 250, staleAfterMs: 2000 },
      },
    })
    assert.equal(made.length, 1, 'the same scraper')
    assert.deepEqual(made[0]!.options, { intervalMs: 250, staleAfterMs: 2000 })
    assert.deepEqual(
      made[0]!.targets.map((target) => target.id),
      ['127.0.0.1:1'],
    )
  })

  test('close() closes every scraper', async (t) => {
    const { made, scrapers, load, close } = setup()
    t.after(close)
    load({ u: { policy: 'aya', endpoints } })
    scrapers.close()
    assert.ok(made[0]!.closed)
  })
})
