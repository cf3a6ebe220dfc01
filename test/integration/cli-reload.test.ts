import assert from 'node:assert/strict'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { oneUpstreamYaml, spawnCli, writeTempFile } from '../helpers/cli.ts'
import { eventually } from '../helpers/eventually.ts'
import { startUpstream } from '../helpers/upstreams.ts'

const config = (upstreamUrl: string, drainTimeoutMs: number) =>
  oneUpstreamYaml(upstreamUrl, `shutdown: { drainTimeoutMs: ${drainTimeoutMs} }\n`)

describe('aya start, reloaded with SIGHUP', () => {
  test('drains for the reloaded shutdown.drainTimeoutMs, not the one it started with', async (t) => {
    // Never answers: only the drain deadline ends the request.
    const upstream = await startUpstream(() => {})
    t.after(() => upstream.close())
    const file = await writeTempFile('aya.yaml', config(upstream.url, 60_000))
    const { child, output } = await spawnCli(
      ['start', '--config', file],
      /listener public on http:\/\/[\d.]+:\d+/,
    )
    t.after(() => child.kill('SIGKILL'))
    const port = Number(/listener public on http:\/\/[\d.]+:(\d+)/.exec(output())![1])
    await writeFile(file, config(upstream.url, 200))
    child.kill('SIGHUP')
    await eventually(() => output().includes('config reloaded'), 'the reload')
    const pending = request(`http://127.0.0.1:${port}/hang`).catch((error: Error) => error)
    await eventually(() => upstream.requests.length === 1, 'the request upstream')
    const signalledAt = performance.now()
    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number]
    assert.equal(code, 0)
    assert.ok(performance.now() - signalledAt < 5_000, 'drained for 200 ms, not 60 s')
    assert.match(output(), /draining \(up to 200 ms\)/)
    assert.ok((await pending) instanceof Error, 'the request left was cut')
  })
})
