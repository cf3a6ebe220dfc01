/** Minimal inline SVG line charts for the HTML report: no scripts, no external assets. */

export interface ChartSeries {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly isDashed?: boolean
}

export interface LineChartOptions {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: readonly ChartSeries[]
  readonly isXLog?: boolean
  readonly yMin?: number
  readonly yMax?: number
  /** Horizontal reference lines, e.g. an SLO. */
  readonly hLines?: ReadonlyArray<{ readonly y: number; readonly label: string }>
  readonly vLines?: ReadonlyArray<{ readonly x: number; readonly label: string }>
  readonly width?: number
  readonly height?: number
}

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
]

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!,
  )
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min]
  const raw = (max - min) / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw
  const ticks: number[] = []
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(t)
  return ticks
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(min)); 10 ** e <= max * 1.0001; e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e
      if (t >= min * 0.9999 && t <= max * 1.0001) ticks.push(t)
    }
  }
  return ticks
}

function formatTick(value: number): string {
  if (value === 0) return '0'
  const abs = Math.abs(value)
  if (abs >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`
  if (abs >= 1e3) return `${+(value / 1e3).toPrecision(3)}k`
  return `${+value.toPrecision(3)}`
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 640
  const height = options.height ?? 320
  const left = 64
  const right = 16
  const top = 32
  const bottom = 48 + 16 * Math.ceil(options.series.length / 4)
  const plotW = width - left - right
  const plotH = height - top - bottom
  const all = options.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  const xs = all.map(([x]) => x).filter((x) => !options.isXLog || x > 0)
  const ys = all.map(([, y]) => y)
  for (const v of options.vLines ?? []) xs.push(v.x)
  for (const h of options.hLines ?? []) ys.push(h.y)
  // A loop, not Math.min(...xs): spreading 300k samples overflows the call stack.
  let xMin = xs.length ? xs.reduce((a, b) => Math.min(a, b)) : 0
  let xMax = xs.length ? xs.reduce((a, b) => Math.max(a, b)) : 1
  if (xMax === xMin) xMax = xMin + 1
  const yMin = options.yMin ?? Math.min(0, ...ys)
  let yMax = options.yMax ?? (ys.length ? ys.reduce((a, b) => Math.max(a, b)) : 1)
  if (yMax <= yMin) yMax = yMin + 1
  if (options.isXLog) {
    xMin = Math.max(xMin, 1e-3)
    if (xMax <= xMin) xMax = xMin * 10
  }
  const sx = (x: number) =>
    left +
    (options.isXLog
      ? ((Math.log10(Math.max(x, xMin)) - Math.log10(xMin)) /
          (Math.log10(xMax) - Math.log10(xMin))) *
        plotW
      : ((x - xMin) / (xMax - xMin)) * plotW)
  const sy = (y: number) => top + plotH - ((y - yMin) / (yMax - yMin)) * plotH
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(options.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
  ]
  const xTicks = options.isXLog ? logTicks(xMin, xMax) : niceTicks(xMin, xMax)
  for (const t of xTicks) {
    const x = sx(t).toFixed(1)
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#eee"/>`,
      `<text x="${x}" y="${top + plotH + 14}" text-anchor="middle">${formatTick(t)}</text>`,
    )
  }
  for (const t of niceTicks(yMin, yMax)) {
    const y = sy(t).toFixed(1)
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`,
    )
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 30}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  )
  for (const h of options.hLines ?? []) {
    const y = sy(h.y).toFixed(1)
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#555" stroke-dasharray="2 3"/>`,
      `<text x="${left + plotW - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#555">${escapeXml(h.label)}</text>`,
    )
  }
  for (const v of options.vLines ?? []) {
    const x = sx(v.x).toFixed(1)
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#555" stroke-dasharray="2 3"/>`,
      `<text x="${Number(x) + 4}" y="${top + 12}" fill="#555">${escapeXml(v.label)}</text>`,
    )
  }
  for (const [i, s] of options.series.entries()) {
    const color = PALETTE[i % PALETTE.length]!
    const d = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!options.isXLog || x > 0))
      .map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`)
      .join('')
    if (d) {
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"${s.isDashed ? ' stroke-dasharray="5 3"' : ''}><title>${escapeXml(s.name)}</title></path>`,
      )
    }
    const lx = left + (i % 4) * (plotW / 4)
    const ly = top + plotH + 44 + 16 * Math.floor(i / 4)
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${color}" stroke-width="2"${s.isDashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      `<text x="${lx + 22}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    )
  }
  out.push('</svg>')
  return out.join('\n')
}
