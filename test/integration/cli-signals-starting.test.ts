import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { type AddressInfo, connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { type Aya, createAya, StartInterrupted } from '../../src/aya.ts'
import { parseConfigObject } from '../../src/config/load.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { AYA_BIN, oneUpstreamYaml } from '../helpers/cli.ts'
import { eventually } from '../helpers/eventually.ts'

/**
 * A config "file" that is a named pipe: `aya start` blocks reading it, still starting, until the
 * test writes the config into it. Each read (the start's, a reload's) takes one write. A process
 * blocked opening a pipe cannot exit (Node waits for its threads), so each test ends the read.
 */
async function configPipe(): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'aya-test-')), 'aya.yaml')
  execFileSync('mkfifo', [file])
  return file
}

function spawnAya(file: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [AYA_BIN, 'start', '--config', file], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk) => {
    output += chunk
  })
  return { child, output: () => output }
}

const exited = (child: ChildProcess) =>
  once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>

/** Whether something accepts connections on 127.0.0.1:`port`. */
function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

// Nothing answers there: these tests send no requests.
const config = (drainTimeoutMs: number) =>
  oneUpstreamYaml('http://127.0.0.1:9', `shutdown: { drainTimeoutMs: ${drainTimeoutMs} }\n`)

describe('aya start, signalled while starting', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} while loading the config stops the start and exits 0`, async (t) => {
      const file = await configPipe()
      const { child, output } = spawnAya(file)
      t.after(() => child.kill('SIGKILL'))
      const exit = exited(child)
      await eventually(() => output().includes('aya: starting'), 'the start')
      child.kill(signal)
      await eventually(() => output().includes(`${signal} while starting`), 'the signal noted')
      // The read ends after the signal: the config is valid, yet nothing starts.
      await writeFile(file, config(200))
      const [code, killedBy] = await exit
      assert.equal(killedBy, null, `killed by ${killedBy}:\n${output()}`)
      assert.equal(code, 0, output())
      assert.match(output(), new RegExp(`aya: ${signal} while starting`))
      assert.doesNotMatch(output(), /listener public on/)
    })
  }

  test('SIGHUP while loading the config does not kill it: it reloads once started', async (t) => {
    const file = await configPipe()
    const { child, output } = spawnAya(file)
    t.after(() => child.kill('SIGKILL'))
    const exit = exited(child)
    await eventually(() => output().includes('aya: starting'), 'the start')
    child.kill('SIGHUP')
    await eventually(() => output().includes('SIGHUP while starting'), 'the SIGHUP noted')
    // The start reads the config it was started with; the reload, the one written after it.
    await writeFile(file, config(60_000))
    await eventually(() => /listener public on/.test(output()), 'the listener')
    await writeFile(file, config(200))
    await eventually(() => output().includes('aya: config reloaded'), 'the reload')
    child.kill('SIGTERM')
    const [code] = await exit
    assert.equal(code, 0, output())
    assert.match(output(), /draining \(up to 200 ms\)/, 'the reloaded config is the running one')
  })
})

describe('Aya closed while starting', () => {
  test('stops starting fleets, binds nothing, releases what started, and start() rejects', async () => {
    const [adminPort, listenerPort] = [await freePort(), await freePort()]
    const logs: Array<Record<string, unknown>> = []
    let aya: Aya | undefined
    let closed: Promise<void> | undefined
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue
          const entry = JSON.parse(line) as Record<string, unknown>
          logs.push(entry)
          // Closed the moment the first fleet is up: the second has not started yet.
          if (entry.msg === 'simulated fleet started') closed ??= aya!.close(1000)
        }
        callback()
      },
    })
    const sim = { replicas: 2, profile: 'h100-llama3-8b' }
    const config = parseConfigObject(
      {
        listeners: [{ name: 'public', address: '127.0.0.1', port: listenerPort }],
        admin: { address: '127.0.0.1', port: adminPort },
        routes: [{ match: { pathPrefix: '/' }, upstream: 'a' }],
        upstreams: { a: { sim, engineMetrics: false }, b: { sim, engineMetrics: false } },
      },
      {},
    )
    aya = createAya(config, { logger: createLogger({ level: 'info', destination }) })
    await assert.rejects(aya.start(), StartInterrupted)
    assert.ok(closed, 'closed while starting')
    await closed
    const started = logs.filter((l) => l.msg === 'simulated fleet started')
    assert.deepEqual(
      started.map((l) => l.upstream),
      ['a'],
      'no fleet starts once closing',
    )
    const fleetPorts = (started[0]!.urls as string[]).map((url) => Number(new URL(url).port))
    for (const port of [adminPort, listenerPort, ...fleetPorts]) {
      assert.equal(await isListening(port), false, `port ${port} is closed`)
    }
    assert.equal(aya.ready, false)
  })
})

/** A port free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
