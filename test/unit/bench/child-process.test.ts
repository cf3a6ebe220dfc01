import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { notReadyError, spawnNode } from '../../../src/bench/child-process.ts'

describe('a child the bench starts', () => {
  test('that dies before it is ready is named, with how it died, in the error the start throws', async () => {
    const child = spawnNode(['-e', 'console.log("starting"); setInterval(() => {}, 1000)'])
    const ready = child.waitForLine((line) => line === 'ready', 10_000)
    await child.waitForLine((line) => line === 'starting', 10_000)
    process.kill(child.pid!, 'SIGKILL')
    const error = await ready.then(
      () => assert.fail('it never said ready'),
      (failure: unknown) => notReadyError('aya start', child, failure),
    )
    assert.ok(error instanceof Error)
    assert.match(
      error.message,
      new RegExp(`^aya start \\(pid ${child.pid}\\) was killed by SIGKILL before it was ready`),
    )
    assert.match(error.message, /starting/)
  })
})
