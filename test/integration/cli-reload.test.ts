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

  test('refuses a bad config, naming its path and value, and keeps serving the running one', async (t) => {
    const first = await startUpstream((_req, res) => res.end('first'))
    const second = await startUpstream((_req, res) => res.end('second'))
    t.after(() => Promise.all([first.close(), second.close()]))
    const file = await writeTempFile('aya.yaml', oneUpstreamYaml(first.url))
    const { child, output } = await spawnCli(
      ['start', '--config', file],
      /listener public on http:\/\/[\d.]+:\d+/,
    )
    t.after(() => child.kill('SIGKILL'))
    const port = Number(/listener public on http:\/\/[\d.]+:(\d+)/.exec(output())![1])
    const body = async () => (await request(`http://127.0.0.1:${port}/`)).body.text()
    // The new upstream is named in a bad config, which must not take its place.
    await writeFile(
      file,
      oneUpstreamYaml(second.url, 'bogus: 1\nshutdown: { drainTimeoutMs: -5 }\n'),
    )
    child.kill('SIGHUP')
    await eventually(() => /reload refused[\s\S]*bogus"\n/.test(output()), 'the refusal')
    const refusal = output().slice(output().indexOf('reload refused'))
    assert.match(refusal, /^unknown key "bogus"$/m)
    assert.match(
      refusal,
      /^shutdown\.drainTimeoutMs: expected a positive integer of milliseconds, got -5$/m,
    )
    assert.equal(await body(), 'first')
    // Mended, it is taken.
    await writeFile(file, oneUpstreamYaml(second.url))
    child.kill('SIGHUP')
    await eventually(() => output().includes('config reloaded'), 'the reload')
    assert.equal(await body(), 'second')
  })
})
