import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { AYA_BIN, oneUpstreamYaml, spawnCli, writeTempFile } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstreams.ts'
import { TRACE_FILES, tracePath } from '../unit/bench/shared-traces.ts'

/** What `aya ... | head -1` does to aya once head has its line: the pipe's reader is gone. */
describe('aya whose output nobody reads any more (| head)', () => {
  test('aya start keeps serving and logging, then drains and exits 0 on SIGTERM', async (t) => {
    const upstream = await startUpstream((_req, res) => res.end('ok'))
    t.after(() => upstream.close())
    const file = await writeTempFile('aya.yaml', oneUpstreamYaml(upstream.url))
    const { child, output } = await spawnCli(
      ['start', '--config', file],
      /listener public on http:\/\/[\d.]+:\d+/,
    )
    t.after(() => child.kill('SIGKILL'))
    const exit = once(child, 'exit')
    const port = Number(/listener public on http:\/\/[\d.]+:(\d+)/.exec(output())![1])
    child.stdout!.destroy()
    child.stderr!.destroy()
    const get = async () => (await request(`http://127.0.0.1:${port}/x`)).body.text()
    assert.equal(await get(), 'ok')
    // The access log reaches stdout within about a second (its periodic flush).
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(await get(), 'ok', 'still serving after its access log hit the closed pipe')
    child.kill('SIGTERM') // says "draining" on the closed stderr
    const [code, signal] = await exit
    assert.deepEqual({ code, signal }, { code: 0, signal: null })
  })

  test('aya bench writes its reports and exits 0 though its summary cannot be printed', async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'aya-closed-stdout-'))
    t.after(() => rm(out, { recursive: true, force: true }))
    const bench = spawn(
      process.execPath,
      [
        AYA_BIN,
        'bench',
        '--mode',
        'des',
        '--trace',
        tracePath(TRACE_FILES.mooncakeConversation),
        '--window',
        '0:20',
        '--policies',
        'round-robin,least-request',
        '--replicas',
        '2',
        '--profile',
        'h100-llama3-8b',
        '--no-progress',
        '--out',
        out,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    t.after(() => bench.kill('SIGKILL'))
    bench.stdout.destroy()
    let stderr = ''
    bench.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const [code] = await once(bench, 'exit')
    assert.equal(code, 0, stderr)
    assert.doesNotMatch(stderr, /EPIPE/)
  })
})
