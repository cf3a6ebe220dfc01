import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { redisConnectionOptions } from '../../src/state/redis-state.ts'

export interface RunningRedis {
  /** `unix://…` URL of the server's socket. */
  readonly url: string
  close(): Promise<void>
}

/**
 * A real Debian `redis-server` (installed by the pretest script), with no persistence, on a Unix
 * socket in a fresh temporary directory: `--port 0` turns its TCP listener off, so parallel test
 * files never race for a port.
 */
export async function startRedis(): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'aya-redis-'))
  const socket = join(dir, 'redis.sock')
  const child = spawn(
    'redis-server',
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
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (/ready to accept connections/i.test(output)) resolve()
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
  })
  child.stdout.removeAllListeners('data')
  child.stderr.removeAllListeners('data')
  child.stdout.resume()
  child.stderr.resume()
  child.removeAllListeners('exit')
  return {
    url: `unix://${socket}`,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
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
