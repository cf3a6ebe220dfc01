import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { type RedisProcess, startRedisProcess } from '../../src/bench/redis-process.ts'
import { redisConnectionOptions } from '../../src/state/redis-url.ts'

export type RunningRedis = RedisProcess

/** A real Debian `redis-server` (installed by the pretest script) on a Unix socket of its own. */
export const startRedis = (): Promise<RunningRedis> => startRedisProcess()

/**
 * A `redis-server` on TCP at 127.0.0.1, for what a Unix-socket URL cannot say (a database
 * number): its port is one the kernel just handed out and took back. `url` names no database.
 */
export async function startTcpRedis(args: readonly string[] = []): Promise<RunningRedis> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return startRedisProcess({ port, args })
}

/**
 * Kills the server (SIGKILL: it saves nothing) and starts an empty one on the same socket, as a
 * Redis that crashed and came back without persistence does. Close both when done.
 */
export async function restartRedisEmpty(redis: RunningRedis): Promise<RunningRedis> {
  const socket = decodeURIComponent(new URL(redis.url).pathname)
  assert.ok(redis.child.pid !== undefined, 'redis-server is running')
  process.kill(redis.child.pid, 'SIGKILL')
  await redis.child.exited
  return startRedisProcess({ socket })
}

/**
 * Stops the server with SIGSTOP: its sockets stay open and it answers nothing, as a Redis wedged
 * on a slow disk or a stuck fork does. Returns what lets it go on (SIGCONT, once); call it before
 * the server is closed.
 */
export function pauseRedis(redis: RunningRedis): () => void {
  const pid = redis.child.pid
  assert.ok(pid !== undefined, 'redis-server is running')
  process.kill(pid, 'SIGSTOP')
  let isPaused = true
  return () => {
    if (!isPaused) return
    isPaused = false
    process.kill(pid, 'SIGCONT')
  }
}

/**
 * Waits until the server counts `count` subscribers of the channel (its full name, key prefix
 * included): Redis confirms a SUBSCRIBE on its own connection some time after subscribe() returns.
 */
export async function untilSubscribed(
  redis: RunningRedis,
  fullChannel: string,
  count: number,
): Promise<void> {
  const probe = new Redis(redisConnectionOptions(redis.url))
  try {
    for (let i = 0; i < 500; i++) {
      const [, subscribers] = (await probe.pubsub('NUMSUB', fullChannel)) as [string, number]
      if (subscribers >= count) return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.fail(`never ${count} subscribers of ${fullChannel}`)
  } finally {
    probe.disconnect()
  }
}
