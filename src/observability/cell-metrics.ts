import type { Metric, Registry } from 'prom-client'

/**
 * Counters and histograms for the per-request hot path. prom-client validates and hashes the
 * labels on every `inc` and `observe`, even through a child from `labels()`, which cost about 5 %
 * of a proxied request's CPU. Here a label set is resolved once into a cell of plain numbers, the
 * hot path adds to the cell, and the registry reads the cells only when scraped. The exposition is
 * prom-client's own: each metric registers with the registry as the object shape its serializer
 * reads (`name`, `help`, `type`, `get()`). A label set is exported once it has been counted, as
 * with prom-client.
 */
export interface CounterCell {
  inc(amount?: number): void
}

export interface HistogramCell {
  observe(value: number): void
}

export interface CellMetric<C> {
  /** The cell for one set of label values, given in the order of `labelNames`. */
  cell(...labelValues: string[]): C
  /**
   * Drops the label sets `keep` refuses, as prom-client's `remove`: a cell already handed out for
   * one counts no more, and asking for its labels again starts a new one at 0.
   */
  retain(keep: (labels: Readonly<Record<string, string>>) => boolean): void
}

interface MetricOptions {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
}

interface ExportedValue {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

export function createCellCounter(
  registry: Registry,
  options: MetricOptions,
): CellMetric<CounterCell> {
  const cells = new Map<string, { labels: Record<string, string>; value: number; used: boolean }>()
  register(
    registry,
    options,
    'counter',
    () =>
      [...cells.values()]
        .filter((cell) => cell.used)
        .map((cell) => ({ value: cell.value, labels: cell.labels })),
    () => {
      for (const cell of cells.values()) cell.value = 0
    },
  )
  return {
    cell(...labelValues) {
      const key = labelValues.join('\u0000')
      let cell = cells.get(key)
      if (cell === undefined) {
        cell = { labels: labelsOf(options.labelNames, labelValues), value: 0, used: false }
        cells.set(key, cell)
      }
      const found = cell
      return {
        inc(amount = 1) {
          found.value += amount
          found.used = true
        },
      }
    },
    retain: (keep) => retainCells(cells, keep),
  }
}

export function createCellHistogram(
  registry: Registry,
  options: MetricOptions & { readonly buckets: readonly number[] },
): CellMetric<HistogramCell> {
  const bounds = [...options.buckets].sort((a, b) => a - b)
  interface Cell {
    readonly labels: Record<string, string>
    /** Per-bucket (not cumulative) counts; the last slot is above every bound. */
    readonly counts: Float64Array
    sum: number
    count: number
    used: boolean
  }
  const cells = new Map<string, Cell>()
  register(
    registry,
    options,
    'histogram',
    () => {
      const values: ExportedValue[] = []
      for (const cell of cells.values()) {
        if (!cell.used) continue
        let cumulative = 0
        for (let i = 0; i < bounds.length; i++) {
          cumulative += cell.counts[i]!
          values.push({
            value: cumulative,
            labels: { le: bounds[i]!, ...cell.labels },
            metricName: `${options.name}_bucket`,
          })
        }
        values.push(
          {
            value: cell.count,
            labels: { le: '+Inf', ...cell.labels },
            metricName: `${options.name}_bucket`,
          },
          { value: cell.sum, labels: cell.labels, metricName: `${options.name}_sum` },
          { value: cell.count, labels: cell.labels, metricName: `${options.name}_count` },
        )
      }
      return values
    },
    () => {
      for (const cell of cells.values()) {
        cell.counts.fill(0)
        cell.sum = 0
        cell.count = 0
      }
    },
  )
  return {
    cell(...labelValues) {
      const key = labelValues.join('\u0000')
      let cell = cells.get(key)
      if (cell === undefined) {
        const labels = labelsOf(options.labelNames, labelValues)
        cell = {
          labels,
          counts: new Float64Array(bounds.length + 1),
          sum: 0,
          count: 0,
          used: false,
        }
        cells.set(key, cell)
      }
      const found = cell
      return {
        observe(value) {
          if (!Number.isFinite(value)) return
          let i = 0
          while (i < bounds.length && value > bounds[i]!) i++
          found.counts[i]!++
          found.sum += value
          found.count++
          found.used = true
        },
      }
    },
    retain: (keep) => retainCells(cells, keep),
  }
}

function retainCells(
  cells: Map<string, { readonly labels: Record<string, string> }>,
  keep: (labels: Readonly<Record<string, string>>) => boolean,
): void {
  for (const [key, cell] of cells) if (!keep(cell.labels)) cells.delete(key)
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  if (names.length !== values.length)
    throw new Error(`expected ${names.length} label values, got ${values.length}`)
  const labels: Record<string, string> = {}
  names.forEach((name, i) => {
    labels[name] = values[i]!
  })
  return labels
}

function register(
  registry: Registry,
  options: MetricOptions,
  type: 'counter' | 'histogram',
  values: () => ExportedValue[],
  reset: () => void,
): void {
  const metric = {
    name: options.name,
    help: options.help,
    type,
    aggregator: 'sum',
    get: async () => ({
      name: options.name,
      help: options.help,
      type,
      aggregator: 'sum',
      values: values(),
    }),
    // Zeroes in place: the hot path holds its cells.
    reset,
  }
  registry.registerMetric(metric as unknown as Metric)
}
