import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PolicyResult } from '../../../src/bench/policy-summary.ts'
import { renderHtml } from '../../../src/bench/report-html.ts'
import { renderMarkdown } from '../../../src/bench/report-markdown.ts'
import type { BenchReport, ReportMeta, RunInfo } from '../../../src/bench/report-types.ts'

const meta: ReportMeta = {
  trace: 'trace.jsonl',
  format: 'mooncake',
  command: 'sweep',
  mode: 'http',
  window: null,
  timing: 'as-recorded',
  rebase: { traceStartMs: 0, firstKeptMs: 0 },
  rateScale: 1,
  rate: null,
  lengthScale: 1,
  speedup: 1,
  seed: 1,
  requests: 10,
  arrivalSpanS: 5,
  maxTokens: 16,
  blockTokens: 512,
  fleet: {
    replicas: 2,
    routers: 1,
    sharedState: false,
    profile: 'h100-llama3-8b',
    kvBlocks: 10,
    kvTokens: 160,
    cacheDemandTokens: 16,
    cacheDemandPercent: 10,
  },
  clipping: { maxInputTokens: 100, clippedRequests: 0 },
  slo: { ttftMs: 2000, itlMs: 25 },
  scrapeIntervalMs: 50,
  timeoutMs: 300_000,
  sweep: { min: 1, max: 16, precision: 0.05 },
  commit: null,
  dirty: null,
  machine: { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'cpu', memoryGiB: 4, node: 'v20' },
  idealPrefixHitRate: 0.5,
  lruBoundPrefixHitRate: 0.4,
  prefillCeiling: null,
  valid: false,
  createdAt: '2026-01-01T00:00:00.000Z',
}

const result = (ttftP90Ms: number): PolicyResult => ({
  ttftP50Ms: 100,
  ttftP90Ms,
  ttftP99Ms: Number.POSITIVE_INFINITY,
  itlP50Ms: Number.NaN,
  itlP99Ms: Number.NaN,
  e2eP50Ms: 900,
  e2eP99Ms: Number.POSITIVE_INFINITY,
  completed: 9,
  failed: 1,
  requestsPerSec: 2,
  outputTokensPerSec: 30,
  goodputPerSec: 1.5,
  goodRequests: 8,
  prefixHitRate: null,
  promptHitRate: null,
  imbalance: null,
  replicaPrefillShare: null,
})

const run = (valid: boolean): RunInfo => ({
  valid,
  ...(valid ? {} : { invalidReason: 'step lateness p99 900 ms > 100 ms' }),
  promptTokenMismatches: 0,
  failures: {},
  preemptions: 0,
  diagnostics: {},
})

const sweepReport: BenchReport = {
  meta,
  policies: { 'round-robin': result(1500), aya: result(1900) },
  runs: { 'round-robin': run(true), aya: run(false) },
  knees: { 'round-robin': 4.25, aya: 16 },
  sweep: {
    'round-robin': [{ rateScale: 4.25, ...result(1500) }],
    aya: [{ rateScale: 16, ...result(1900) }],
  },
  confirm: { 'round-robin': { rateScale: 4.25, ...result(2100) } },
}

const empty = { samples: [], ttftCdf: [] }

describe('report.html', () => {
  it('shows what report.md shows of a sweep: the rate scale of each row, the knees, the confirmations', () => {
    const html = renderHtml(sweepReport, { 'round-robin': empty, aya: empty })
    const md = renderMarkdown(sweepReport)
    for (const title of ["At each policy's knee", 'Knees', 'HTTP confirmation at the DES knees']) {
      assert.match(md, new RegExp(`## ${title}`))
      assert.ok(html.includes(`<h2>${title.replace("'", '&#39;')}</h2>`), title)
    }
    // Each policy row says which rate scale its numbers come from, as in report.md.
    assert.match(html, /<th>policy<\/th><th>rate scale<\/th><th>TTFT p50 ms<\/th>/)
    assert.match(html, /<tr><th>round-robin<\/th><td>4\.25<\/td><td>100<\/td>/)
    assert.match(html, /<tr><th>aya<\/th><td>≥ 16<\/td>/)
    assert.match(html, /Highest rate scale with TTFT p90 ≤ 2000 ms/)
    // Infinite and undefined numbers read as ∞ and —, never NaN or Infinity.
    assert.doesNotMatch(html, /NaN|Infinity/)
    assert.match(html, /<td>∞<\/td>/)
    assert.match(html, /<td>—<\/td>/)
  })

  it('names an invalid run once, not also in the meta list', () => {
    const html = renderHtml(sweepReport, { 'round-robin': empty, aya: empty })
    assert.equal(html.split('step lateness p99 900 ms').length - 1, 1, html)
    assert.match(
      html,
      /<p class="invalid">Invalid run aya: step lateness p99 900 ms &gt; 100 ms<\/p>/,
    )
    assert.match(html, /<li>mode http, speedup 1×; 10 requests/)
  })
})
