import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createEventLoopAccumulator,
  EVENT_LOOP_PROBE_IMPORT,
  monitorOwnEventLoop,
  parseProbeLine,
} from '../../../src/bench/event-loop-probe.ts'

describe('event-loop probe', () => {
  it('is a data: URL module and its lines parse', () => {
    assert.match(EVENT_LOOP_PROBE_IMPORT, /^data:text\/javascript,/)
    const line = `aya-bench-event-loop ${JSON.stringify({
      count: 100,
      maxMs: 3,
      percentiles: [
        [50, 0.1],
        [99, 2],
        [100, 3],
      ],
    })}`
    assert.equal(parseProbeLine(line)?.count, 100)
    assert.equal(parseProbeLine('aya: listener public on http://127.0.0.1:1'), undefined)
    assert.equal(parseProbeLine('aya-bench-event-loop {oops'), undefined)
  })

  it('merges reports into a run-wide p99 bucket and max', () => {
    const acc = createEventLoopAccumulator()
    for (let i = 0; i < 9; i++)
      acc.add({
        count: 100,
        maxMs: 0.4,
        percentiles: [
          [99, 0.3],
          [100, 0.4],
        ],
      })
    acc.add({
      count: 100,
      maxMs: 40,
      percentiles: [
        [90, 0.3],
        [99, 30],
        [100, 40],
      ],
    })
    const result = acc.result()
    assert.equal(result.samples, 1000)
    assert.equal(result.maxMs, 40)
    // 990 of 1000 samples are at most 0.5 ms.
    assert.equal(result.p99Ms, 0.5)
    acc.reset()
    assert.deepEqual(acc.result(), { samples: 0, p99Ms: 0, maxMs: 0 })
  })

  it('drops the first report after a reset, which covers time before it', () => {
    const acc = createEventLoopAccumulator()
    const report = (maxMs: number) => ({
      count: 100,
      maxMs,
      percentiles: [[100, maxMs]] as const,
    })
    acc.add(report(150))
    assert.equal(acc.result().maxMs, 150)
    acc.reset()
    acc.add(report(120))
    assert.deepEqual(acc.result(), { samples: 0, p99Ms: 0, maxMs: 0 })
    acc.add(report(4))
    acc.add(report(3))
    assert.equal(acc.result().samples, 200)
    assert.equal(acc.result().maxMs, 4)
  })

  it('measures the bench’s own loop', () => {
    const monitor = monitorOwnEventLoop()
    const value = monitor.take()
    assert.ok(value.maxMs >= 0)
    monitor.close()
  })
})
