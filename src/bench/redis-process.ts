import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RedisProcess {
  /** `unix://…` URL of the server's socket, for `state: { store: redis, url }`. */
  readonly url: string
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves once it is gone. */
  close(graceMs?: number): Promise<void>
}

/**
 * A `redis-server` (Debian's package) of its own, with no persistence, on a Unix socket in a
 * fresh temporary directory: `--port 0` turns its TCP listener off, so nothing races for a port.
 * For HTTP bench runs whose routers share state, and for the tests.
 */
export async function startRedisProcess(
  options: {
    readonly binary?: string
    readonly startTimeoutMs?: number
    /** The socket's path; a fresh one in the temporary directory by default. */
    readonly socket?: string
  } = {},
): Promise<RedisProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'aya-redis-'))
  const socket = options.socket ?? join(dir, 'redis.sock')
  const child = spawn(
    options.binary ?? 'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start: ${output}`)),
        options.startTimeoutMs ?? 10_000,
      )
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (/ready to accept connections/i.test(output)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('error', (error) => {
        clearTimeout(timer)
        reject(new Error(`cannot start redis-server (apt-get install redis-server): ${error}`))
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}: ${output}`))
      })
    })
  } catch (error) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  child.removeAllListeners('exit')
  child.stdout.removeAllListeners('data')
  child.stderr.removeAllListeners('data')
  child.stdout.resume()
  child.stderr.resume()
  return {
    url: `unix://${socket}`,
    async close(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
