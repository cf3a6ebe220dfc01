import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createEmulatedEngineMetrics } from '../../../src/bench/emulated-engine-metrics.ts'
import { createEngine } from '../../../src/sim/engine.ts'
import { H100_LLAMA3_8B } from '../../../src/sim/profiles.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('emulated engine metrics', () => {
  it('snapshots engine stats every interval, so policies see scrape-stale data', () => {
    const clock = createManualClock()
    const engine = createEngine({ profile: H100_LLAMA3_8B }, { clock })
    const metrics = createEmulatedEngineMetrics(
      { intervalMs: 100 },
      { clock, engines: new Map([['replica-0', engine]]) },
    )
    metrics.start()
    assert.equal(metrics.get('replica-0')?.waiting, 0)
    assert.equal(metrics.get('replica-0')?.numGpuBlocks, 26_900)
    engine.submit(
      { promptTokens: 2000, promptBlockHashes: [], promptHash: 1, outputTokens: 50 },
      {},
    )
    clock.advance(10)
    assert.equal(engine.stats().running, 1)
    assert.equal(metrics.get('replica-0')?.running, 0, 'not scraped yet')
    clock.advance(95)
    assert.equal(metrics.get('replica-0')?.running, 1)
    assert.equal(metrics.get('replica-0')?.atMs, 100)
    assert.equal(metrics.get('replica-9'), undefined)
    metrics.close()
    clock.advance(1000)
    assert.equal(metrics.get('replica-0'), undefined, 'stale after 3 intervals without scrapes')
    assert.deepEqual(
      metrics.kvLayout('replica-0'),
      { blockSize: 16, numGpuBlocks: 26_900 },
      'the KV layout is configuration: it outlives the snapshot',
    )
    engine.close()
  })
})
