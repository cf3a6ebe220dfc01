import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { createLogger } from '../../../src/observability/logger.ts'
import { createThrottledWarn } from '../../../src/observability/throttled-warn.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('createThrottledWarn', () => {
  it('logs once per interval and counts the warnings it left out', () => {
    const lines: Array<Record<string, unknown>> = []
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
        callback()
      },
    })
    const clock = createManualClock()
    const warn = createThrottledWarn(
      { message: 'store down', intervalMs: 10_000 },
      { logger: createLogger({ level: 'info', destination }), clock },
    )
    warn(new Error('one'), { upstream: 'fleet' })
    for (let i = 0; i < 99; i++) warn(new Error('again'))
    clock.advance(10_000)
    warn(new Error('later'))
    assert.deepEqual(
      lines.map((line) => [line.msg, line.suppressed, line.upstream]),
      [
        ['store down', 0, 'fleet'],
        ['store down', 99, undefined],
      ],
    )
  })
})
