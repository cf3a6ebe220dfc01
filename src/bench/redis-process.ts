import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnChild } from './child-process.ts'

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
  const child = spawnChild(options.binary ?? 'redis-server', [
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
  ])
  try {
    await child.waitForLine(
      (line) => /ready to accept connections/i.test(line),
      options.startTimeoutMs ?? 10_000,
    )
  } catch (error) {
    await child.close(0)
    await rm(dir, { recursive: true, force: true })
    throw new Error(`redis-server did not start (apt-get install redis-server): ${error}`)
  }
  return {
    url: `unix://${socket}`,
    async close(graceMs = 5000) {
      await child.close(graceMs)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
