import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { adminMetrics, metricSample, startSimGateway } from '../helpers/aya.ts'

/**
 * prom-client's default process metrics name three gauges `*_total`, which promtool's linter
 * flags; they are prom-client's, not Aya's, and renaming them would break every Node dashboard.
 */
const PROM_CLIENT_DEFAULTS =
  /^aya_process_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/

/** promtool's verdict on a Prometheus text exposition: its exit code and the problems it lists. */
async function promtoolCheck(text: string): Promise<{ code: number | null; problems: string[] }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  child.stdin.end(text)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, problems: output.split('\n').filter((line) => line.trim() !== '') }
}

describe('the admin /metrics exposition', () => {
  test('passes promtool’s parser and linter, after streamed and plain LLM traffic, admission and an error', async (t) => {
    const aya = await startSimGateway(t, {
      policy: 'aya',
      sim: { replicas: 2, profile: 'h100-llama3-8b', speedup: 20 },
      admission: {},
    })
    for (let i = 0; i < 3; i++) {
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'llama',
          max_tokens: 4,
          messages: [{ role: 'user', content: `question ${i} ${'hello '.repeat(50)}` }],
          // Streamed with usage, for time to first token and token counts; one not streamed.
          ...(i < 2 ? { stream: true, stream_options: { include_usage: true } } : {}),
        }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
    const bad = await request(`${aya.url}/v1/chat/completions`, { method: 'POST', body: '{' })
    assert.equal(bad.statusCode, 400)
    await bad.body.dump()

    const text = await adminMetrics(aya)
    // Series from each part that has something to say by now.
    for (const name of [
      'aya_requests_total',
      'aya_scheduler_decisions_total',
      'aya_endpoint_pending_prefill_tokens',
      'aya_admission_queue_depth',
      'aya_admission_queue_bytes',
      'aya_errors_total',
      'aya_llm_ttft_seconds_bucket',
      'aya_llm_time_per_output_token_seconds_bucket',
      'aya_llm_tokens_total',
    ]) {
      assert.match(text, new RegExp(`^${name}\\{`, 'm'), name)
    }
    // The simulated engine reports 4 completion tokens each; the TTFT of the two streams alone.
    const llm = 'route="route-0",model="llama"'
    assert.equal(metricSample(text, 'aya_llm_ttft_seconds_count', llm), 2)
    assert.equal(metricSample(text, 'aya_llm_tokens_total', `${llm},kind="completion"`), 12)
    const { code, problems } = await promtoolCheck(text)
    const ours = problems.filter((line) => !PROM_CLIENT_DEFAULTS.test(line))
    assert.deepEqual(ours, [], 'promtool finds nothing wrong with Aya’s own metrics')
    // 0 when clean, 3 when only lint problems (prom-client's) remain; a parse error is 1.
    assert.ok(code === 0 || code === 3, `promtool exit ${code}`)
  })
})
