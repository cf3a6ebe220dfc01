import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { createCellCounter, createCellHistogram } from '../../../src/observability/cell-metrics.ts'

const buckets = [0.001, 0.01, 0.1, 1]

describe('cell metrics', () => {
  test('expose exactly what prom-client exposes for the same counts', async () => {
    const ours = new Registry()
    const reference = new Registry()
    const counter = createCellCounter(ours, { name: 'c_total', help: 'c', labelNames: ['a', 'b'] })
    const histogram = createCellHistogram(ours, {
      name: 'h_seconds',
      help: 'h',
      labelNames: ['a'],
      buckets,
    })
    const refCounter = new Counter({
      name: 'c_total',
      help: 'c',
      labelNames: ['a', 'b'],
      registers: [reference],
    })
    const refHistogram = new Histogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['a'],
      buckets,
      registers: [reference],
    })
    const x1 = counter.cell('x', '1')
    for (const amount of [1, 2, 3]) {
      x1.inc(amount)
      refCounter.inc({ a: 'x', b: '1' }, amount)
    }
    counter.cell('y', '"quoted"\n').inc()
    refCounter.inc({ a: 'y', b: '"quoted"\n' })
    for (const [label, value] of [
      ['x', 0.0005],
      ['x', 0.001],
      ['x', 0.05],
      ['y', 7],
      ['x', 2],
    ] as const) {
      histogram.cell(label).observe(value)
      refHistogram.observe({ a: label }, value)
    }
    assert.equal(await ours.metrics(), await reference.metrics())
  })

  test('leave out label sets that were resolved but never counted', async () => {
    const registry = new Registry()
    const counter = createCellCounter(registry, { name: 'c_total', help: 'c', labelNames: ['a'] })
    const histogram = createCellHistogram(registry, {
      name: 'h',
      help: 'h',
      labelNames: ['a'],
      buckets,
    })
    counter.cell('unused')
    histogram.cell('unused')
    counter.cell('used').inc(0)
    const text = await registry.metrics()
    assert.doesNotMatch(text, /unused/)
    assert.match(text, /c_total\{a="used"\} 0/)
  })

  test('resolve a label set to one shared cell, and reset zeroes it in place', async () => {
    const registry = new Registry()
    const counter = createCellCounter(registry, { name: 'c_total', help: 'c', labelNames: ['a'] })
    const held = counter.cell('x')
    counter.cell('x').inc(2)
    held.inc(3)
    assert.match(await registry.metrics(), /c_total\{a="x"\} 5/)
    registry.resetMetrics()
    held.inc()
    assert.match(await registry.metrics(), /c_total\{a="x"\} 1/)
  })

  test('ignore non-finite observations and reject a wrong number of label values', async () => {
    const registry = new Registry()
    const histogram = createCellHistogram(registry, {
      name: 'h',
      help: 'h',
      labelNames: ['a'],
      buckets,
    })
    histogram.cell('x').observe(Number.NaN)
    histogram.cell('x').observe(0.5)
    assert.match(await registry.metrics(), /h_count\{a="x"\} 1/)
    assert.throws(() => histogram.cell('x', 'y'), /expected 1 label values, got 2/)
  })
})
