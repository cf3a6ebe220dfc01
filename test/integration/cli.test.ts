import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { oneUpstreamYaml, runCli, spawnCli, writeTempFile } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstreams.ts'

const valid = (upstreamUrl = 'http://127.0.0.1:9001') => oneUpstreamYaml(upstreamUrl)

describe('aya usage', () => {
  test('start and validate take --help and -h as sim and bench do: the usage on stdout, exit 0', async () => {
    for (const args of [
      ['start', '--help'],
      ['validate', '-h'],
      ['start', '-c', 'x.yaml', '-h'],
    ]) {
      const result = await runCli(args)
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stdout, /^usage:\n {2}aya start --config FILE\n/)
      assert.equal(result.stderr, '')
    }
  })

  test('no command is a usage error: the usage on stderr, exit 2', async () => {
    const result = await runCli([])
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^usage:\n/)
  })
})

describe('aya validate', () => {
  test('prints ok and exits 0 for a valid config', async () => {
    const file = await writeTempFile('aya.yaml', valid())
    const result = await runCli(['validate', '--config', file])
    assert.equal(result.code, 0)
    assert.equal(result.stdout, 'ok\n')
  })

  const broken: Array<[string, string, RegExp]> = [
    [
      'a wrong type',
      valid().replace('port: 0\nadmin', 'port: "x"\nadmin'),
      /^listeners\[0\]\.port: expected a port number .*got "x"$/m,
    ],
    [
      'a listener address that is no address',
      valid().replace('address: 127.0.0.1\n    port: 0', 'address: not an ip\n    port: 0'),
      /^listeners\[0\]\.address: expected an IP address .*got "not an ip"$/m,
    ],
    [
      'an unknown policy',
      valid().replace('  api:\n', '  api:\n    policy: fastest\n'),
      /^upstreams\.api\.policy: unknown policy "fastest"/m,
    ],
    [
      'a duplicate listener port',
      valid().replace(
        '    port: 0\nadmin',
        '    port: 8181\n  - name: second\n    port: 8181\nadmin',
      ),
      /^listeners\[1\]\.port: duplicate listener port 8181/m,
    ],
    [
      'a model with a second deployment',
      valid().replace('upstream: api', 'gateway: models') +
        'models:\n  llama:\n    deployments: [{ upstream: api }, { upstream: api, model: b }]\n',
      /^models\.llama\.deployments\[1\]: only one deployment per model .*got \{"upstream":"api","model":"b"\}$/m,
    ],
    [
      'a route to a missing upstream',
      valid().replace('upstream: api', 'upstream: ghost'),
      /^routes\[0\]\.upstream: unknown upstream "ghost"/m,
    ],
  ]
  for (const [what, text, expected] of broken) {
    test(`prints the error and exits 2 for ${what}`, async () => {
      const file = await writeTempFile('aya.yaml', text)
      const result = await runCli(['validate', '--config', file])
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, expected)
      assert.equal(result.stdout, '')
    })
  }

  test('says an empty file is empty, naming it, and exits 2', async () => {
    for (const text of ['', '# to be written\n']) {
      const file = await writeTempFile('aya.yaml', text)
      const result = await runCli(['validate', '--config', file])
      assert.equal(result.code, 2, result.stderr)
      assert.equal(result.stderr, `${file} is empty: it needs listeners, routes and upstreams\n`)
    }
  })

  test('prints every error, not just the first', async () => {
    const text = valid()
      .replace('upstream: api', 'upstream: ghost')
      .replace('  api:\n', '  api:\n    policy: fastest\n')
    const result = await runCli(['validate', '--config', await writeTempFile('aya.yaml', text)])
    assert.equal(result.code, 2)
    assert.equal(result.stderr.trim().split('\n').length, 2)
  })

  test('fails on an unset environment variable without a default', async () => {
    const file = await writeTempFile('aya.yaml', valid('${API_URL}'))
    const result = await runCli(['validate', '--config', file])
    assert.equal(result.code, 2)
    assert.match(
      result.stderr,
      /upstreams\.api\.endpoints\[0\]\.url: environment variable API_URL is not set/,
    )
    const ok = await runCli(['validate', '--config', file], { API_URL: 'http://127.0.0.1:9009' })
    assert.equal(ok.code, 0)
  })
})

describe('aya start', () => {
  test('refuses to start on a bad config and exits 2', async () => {
    const file = await writeTempFile(
      'aya.yaml',
      valid().replace('upstream: api', 'upstream: ghost'),
    )
    const result = await runCli(['start', '--config', file])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /unknown upstream "ghost"/)
  })

  test('exits 2, leaving nothing listening, when a listener’s port is taken', {
    timeout: 20_000,
  }, async (t) => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())))
    const taken = (holder.address() as AddressInfo).port
    const file = await writeTempFile('aya.yaml', valid().replace(/port: 0/, `port: ${taken}`))
    const result = await runCli(['start', '--config', file])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /EADDRINUSE/)
  })

  test('writes access lines within a second or so while running, not only at exit', async () => {
    const upstream = await startUpstream((_req, res) => res.end('ok'))
    try {
      const file = await writeTempFile('aya.yaml', valid(upstream.url))
      const { child, output } = await spawnCli(
        ['start', '--config', file],
        /listener public on http:\/\/[\d.]+:\d+/,
      )
      try {
        const port = Number(/listener public on http:\/\/[\d.]+:(\d+)/.exec(output())![1])
        await (await request(`http://127.0.0.1:${port}/logged-path`)).body.text()
        const deadline = Date.now() + 5000
        while (!output().includes('/logged-path') && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        assert.match(output(), /"url":"\/logged-path"/)
      } finally {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    } finally {
      await upstream.close()
    }
  })

  test('finishes an in-flight request on SIGTERM, then exits 0', async () => {
    const upstream = await startUpstream((_req, res) => {
      setTimeout(() => res.end('finished'), 300)
    })
    try {
      const file = await writeTempFile('aya.yaml', valid(upstream.url))
      const { child, output } = await spawnCli(
        ['start', '--config', file],
        /listener public on http:\/\/[\d.]+:\d+/,
      )
      const port = Number(/listener public on http:\/\/[\d.]+:(\d+)/.exec(output())![1])
      const pending = request(`http://127.0.0.1:${port}/slow`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      child.kill('SIGTERM')
      const res = await pending
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'finished')
      const [code] = (await once(child, 'exit')) as [number]
      assert.equal(code, 0)
    } finally {
      await upstream.close()
    }
  })
})
