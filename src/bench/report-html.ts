import { type ReportSection, reportSections } from './report-format.ts'
import { renderMarkdown } from './report-markdown.ts'
import type { BenchReport, PolicySeries } from './report-types.ts'
import { escapeXml, lineChart } from './svg-chart.ts'

function sectionHtml(section: ReportSection): string {
  const row = (cells: readonly string[]) =>
    `<tr><th>${escapeXml(cells[0] ?? '')}</th>${cells
      .slice(1)
      .map((c) => `<td>${escapeXml(c)}</td>`)
      .join('')}</tr>`
  return [
    `<h2>${escapeXml(section.title)}</h2>`,
    ...(section.intro === undefined ? [] : [`<p>${escapeXml(section.intro)}</p>`]),
    `<table><tr>${section.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>${section.rows.map(row).join('')}</table>`,
    ...(section.note === undefined ? [] : [`<p>${escapeXml(section.note)}</p>`]),
  ].join('\n')
}

function charts(report: BenchReport, series: Readonly<Record<string, PolicySeries>>): string[] {
  const { meta } = report
  const names = Object.keys(series)
  const out: string[] = [
    lineChart({
      title: 'TTFT CDF (failures never reach 1)',
      xLabel: 'TTFT, trace ms (log)',
      yLabel: 'fraction of requests',
      isXLog: true,
      yMin: 0,
      yMax: 1,
      vLines: [{ x: meta.slo.ttftMs, label: 'SLO' }],
      series: names.map((name) => ({ name, points: series[name]!.ttftCdf })),
    }),
    lineChart({
      title: 'Fleet prefix-cache hit rate, cumulative',
      xLabel: 'trace seconds',
      yLabel: 'hits / queries',
      yMin: 0,
      yMax: Math.min(1, Math.max(0.1, meta.idealPrefixHitRate * 1.15)),
      hLines: [
        { y: meta.idealPrefixHitRate, label: 'ideal' },
        { y: meta.lruBoundPrefixHitRate, label: 'global LRU' },
      ],
      series: names.map((name) => ({
        name,
        points: series[name]!.samples.flatMap((s) =>
          s.hitRate === null ? [] : [[s.atMs / 1000, s.hitRate] as const],
        ),
      })),
    }),
  ]
  for (const name of names) {
    const samples = series[name]!.samples
    const replicas = samples[0]?.load.length ?? 0
    out.push(
      lineChart({
        title: `Per-replica load: ${name}`,
        xLabel: 'trace seconds',
        yLabel: 'running + waiting',
        yMin: 0,
        height: 260,
        series: Array.from({ length: replicas }, (_, i) => ({
          name: `replica-${i}`,
          points: samples.map((s) => [s.atMs / 1000, s.load[i] ?? 0] as const),
        })),
      }),
    )
  }
  if (report.sweep) {
    out.push(
      lineChart({
        title: 'Knee search: TTFT p90 against rate scale (clipped at 3 × SLO)',
        xLabel: 'rate scale',
        yLabel: 'TTFT p90, trace ms',
        yMin: 0,
        hLines: [{ y: meta.slo.ttftMs, label: 'SLO' }],
        series: Object.entries(report.sweep).map(([name, points]) => ({
          name,
          points: points
            .map((p) => [p.rateScale, Math.min(p.ttftP90Ms, meta.slo.ttftMs * 3)] as const)
            .sort((a, b) => a[0] - b[0]),
        })),
      }),
    )
  }
  return out
}

/** `report.html`: self-contained, charts as inline SVG, no scripts or external assets. */
export function renderHtml(
  report: BenchReport,
  series: Readonly<Record<string, PolicySeries>>,
): string {
  // The meta list only: the invalid runs, also bulleted in report.md, get their own lines below.
  const lines = renderMarkdown(report).split('\n')
  const metaStart = lines.findIndex((l) => l.startsWith('- '))
  const metaEnd = lines.findIndex((l, i) => i > metaStart && !l.startsWith('- '))
  const summary = lines
    .slice(metaStart, metaEnd)
    .map((l) => `<li>${escapeXml(l.slice(2).replace(/\*\*/g, ''))}</li>`)
    .join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aya bench: ${escapeXml(report.meta.trace)}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:12px}.invalid{color:#b00}
</style></head><body>
<h1>aya bench: ${escapeXml(report.meta.trace)}</h1>
<ul>${summary}</ul>
${Object.entries(report.runs)
  .filter(([, r]) => !r.valid)
  .map(
    ([n, r]) =>
      `<p class="invalid">Invalid run ${escapeXml(n)}: ${escapeXml(r.invalidReason ?? '')}</p>`,
  )
  .join('\n')}
${reportSections(report).map(sectionHtml).join('\n')}
<div class="charts">
${charts(report, series).join('\n')}
</div>
</body></html>
`
}
