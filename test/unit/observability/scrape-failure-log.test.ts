import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { createLogger } from '../../../src/observability/logger.ts'
import { createScrapeFailureLog } from '../../../src/observability/scrape-failure-log.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
      callback()
    },
  })
  return { lines, logger: createLogger({ level: 'info', destination }) }
}

describe('scrape failure log', () => {
  it('says why an endpoint gives no reading once a minute, counting the failures left out', () => {
    const { lines, logger } = capture()
    const clock = createManualClock()
    const log = createScrapeFailureLog({ intervalMs: 60_000 }, { logger, clock })
    log.failed('llm', 'a', 'status 404')
    for (let i = 0; i < 59; i++) {
      clock.advance(1000)
      log.failed('llm', 'a', 'status 404')
    }
    log.failed('llm', 'b', 'no page within 1000 ms')
    clock.advance(1000)
    log.failed('llm', 'a', 'connect ECONNREFUSED 127.0.0.1:1')
    assert.deepEqual(
      lines.map((line) => [line.level, line.endpoint, line.reason, line.suppressed]),
      [
        ['warn', 'a', 'status 404', 0],
        ['warn', 'b', 'no page within 1000 ms', 0],
        ['warn', 'a', 'connect ECONNREFUSED 127.0.0.1:1', 59],
      ],
    )
  })

  it('says once when readings come back, and a flapping endpoint writes a warning and a recovery a minute at most', () => {
    const { lines, logger } = capture()
    const clock = createManualClock()
    const log = createScrapeFailureLog({ intervalMs: 60_000 }, { logger, clock })
    log.read('llm', 'a')
    for (let i = 0; i < 120; i++) {
      log.failed('llm', 'a', 'status 500')
      clock.advance(500)
      log.read('llm', 'a')
      clock.advance(500)
    }
    assert.deepEqual(
      lines.map((line) => [line.level, String(line.msg).split(':')[0]]),
      [
        ['warn', 'engine metrics scrape failed'],
        ['info', 'engine metrics read again'],
        ['warn', 'engine metrics scrape failed'],
        ['info', 'engine metrics read again'],
      ],
    )
  })

  it('forgets the endpoints no longer scraped', () => {
    const { lines, logger } = capture()
    const clock = createManualClock()
    const log = createScrapeFailureLog({ intervalMs: 60_000 }, { logger, clock })
    log.failed('llm', 'a', 'status 404')
    log.retainOnly([{ upstream: 'llm', endpointId: 'b' }])
    // Scraped again after a reload brought it back: its failures are news again.
    log.failed('llm', 'a', 'status 404')
    log.read('llm', 'a')
    assert.deepEqual(
      lines.map((line) => line.level),
      ['warn', 'warn', 'info'],
    )
  })
})
