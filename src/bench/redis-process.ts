import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type NodeChild, spawnChild } from './child-process.ts'

export interface RedisProcess {
  /** `unix://…` URL of the server's socket (`redis://…` on TCP), for `state: { store: redis, url }`. */
  readonly url: string
  readonly child: NodeChild
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
    /** Listen on TCP at 127.0.0.1 on this port instead of a Unix socket (`url` is `redis://…`). */
    readonly port?: number
    /** More arguments for `redis-server`. */
    readonly args?: readonly string[]
    /** Ends the server (and so its start) when it aborts. */
    readonly signal?: AbortSignal | undefined
  } = {},
): Promise<RedisProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'aya-redis-'))
  const socket = options.socket ?? join(dir, 'redis.sock')
  const listen =
    options.port === undefined
      ? ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700']
      : ['--bind', '127.0.0.1', '--port', String(options.port)]
  const child = spawnChild(
    options.binary ?? 'redis-server',
    [...listen, '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.args ?? [])],
    { signal: options.signal },
  )
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
    url: options.port === undefined ? `unix://${socket}` : `redis://127.0.0.1:${options.port}`,
    child,
    async close(graceMs = 5000) {
      await child.close(graceMs)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
