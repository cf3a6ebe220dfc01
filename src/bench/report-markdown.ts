import { formatPercent, reportSections } from './report-format.ts'
import type { BenchReport } from './report-types.ts'

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [
    line(header),
    line(header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n')
}

/** `report.md`: the meta that decides how to read the numbers, then one row per policy. */
export function renderMarkdown(report: BenchReport): string {
  const { meta } = report
  const window = meta.window ? `${meta.window.startS}–${meta.window.endS} s` : 'whole trace'
  const out: string[] = [
    `# aya bench: ${meta.trace}`,
    '',
    `- mode **${meta.mode}**${meta.mode === 'http' ? `, speedup ${meta.speedup}×` : ''}; ${meta.requests} requests; window ${window}; timing ${meta.timing}`,
    `- rate scale ${meta.rateScale}${meta.rate === null ? '' : `, Poisson ${meta.rate} req/s`}; length scale ${meta.lengthScale}${meta.blockTokens === null ? '' : ` (hash-id block ${meta.blockTokens} tokens)`}; max_tokens ${meta.maxTokens}; seed ${meta.seed}`,
    `- fleet ${meta.fleet.replicas} × ${meta.fleet.profile}${meta.fleet.routers > 1 ? ` behind ${meta.fleet.routers} routers${meta.fleet.sharedState ? ' sharing state' : ''}` : ''}: ${meta.fleet.kvTokens.toLocaleString('en-US')} KV tokens; cache demand ${meta.fleet.cacheDemandPercent.toFixed(1)} % of fleet KV; clipped prompts ${meta.clipping.clippedRequests} (max ${meta.clipping.maxInputTokens} tokens)`,
    `- prefix hit-rate bounds: ideal ${formatPercent(meta.idealPrefixHitRate)}, one global LRU ${formatPercent(meta.lruBoundPrefixHitRate)}`,
    ...(meta.prefillCeiling === null
      ? []
      : [
          `- prefill ceiling: rate scale ${meta.prefillCeiling.rateScale.toFixed(2)} (the fleet prefills ${Math.round(meta.prefillCeiling.fleetPrefillTokensPerSec).toLocaleString('en-US')} tokens/s; this run offers ${Math.round(meta.prefillCeiling.uncachedPromptTokensPerSec).toLocaleString('en-US')} uncached at the LRU bound)`,
        ]),
    `- SLO: TTFT ≤ ${meta.slo.ttftMs} ms, mean ITL ≤ ${meta.slo.itlMs} ms; commit ${meta.commit ?? 'unknown'}${meta.dirty ? ' (dirty)' : ''}; ${meta.machine.cpus} × ${meta.machine.cpuModel}, Node ${meta.machine.node}`,
    '',
  ]
  const invalid = Object.entries(report.runs).filter(([, run]) => !run.valid)
  if (invalid.length > 0) {
    out.push('**Invalid runs:**', '')
    for (const [name, run] of invalid) out.push(`- ${name}: ${run.invalidReason ?? 'invalid'}`)
    out.push('')
  }
  for (const section of reportSections(report)) {
    out.push(`## ${section.title}`, '')
    if (section.intro !== undefined) out.push(section.intro, '')
    out.push(table(section.header, section.rows), '')
    if (section.note !== undefined) out.push(section.note, '')
  }
  return `${out.join('\n')}\n`
}
