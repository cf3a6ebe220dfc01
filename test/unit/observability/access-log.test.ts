import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { createAccessLog } from '../../../src/observability/access-log.ts'
import type { RequestContext } from '../../../src/proxy/request-context.ts'

function context(id: string, url = '/'): RequestContext {
  return {
    id,
    startMs: 0,
    listener: 'main',
    clientIp: '127.0.0.1',
    method: 'GET',
    url,
    route: undefined,
    upstream: 'app',
    endpoint: undefined,
    llm: undefined,
    attempts: 1,
    status: 200,
    errorCode: undefined,
    bytesIn: 0,
    bytesOut: 2,
    upstreamLatencyMs: 1.23456,
    durationMs: 2,
  } as unknown as RequestContext
}

describe('access log', () => {
  test('writes the lines of one event-loop turn as one write when the turn ends', async () => {
    const writes: string[] = []
    const log = createAccessLog({ write: (text) => writes.push(text) }, () => 1000.4)
    log(context('a'))
    log(context('b'))
    assert.equal(writes.length, 0)
    await nextTurn()
    assert.equal(writes.length, 1)
    const lines = writes[0]!
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(
      lines.map((line) => [line.requestId, line.time, line.status, line.upstreamMs, line.msg]),
      [
        ['a', 1000, 200, 1.235, 'access'],
        ['b', 1000, 200, 1.235, 'access'],
      ],
    )
  })

  test('writes at once when the held lines pass 16 KiB, and flush writes the rest', () => {
    const writes: string[] = []
    const log = createAccessLog({ write: (text) => writes.push(text) }, () => 0)
    const long = `/${'x'.repeat(6_000)}`
    for (const id of ['a', 'b', 'c', 'd']) log(context(id, long))
    assert.equal(writes.length, 1)
    assert.equal(writes[0]!.split('\n').length - 1, 3)
    log.flush()
    assert.equal(writes.length, 2)
    assert.equal(JSON.parse(writes[1]!).requestId, 'd')
    log.flush()
    assert.equal(writes.length, 2, 'nothing held, nothing written')
  })

  test('escapes client-supplied text so every line stays valid JSON', async () => {
    const writes: string[] = []
    const log = createAccessLog({ write: (text) => writes.push(text) }, () => 0)
    log(context('a', '/"quoted"\n\\'))
    log.flush()
    assert.equal(JSON.parse(writes[0]!).url, '/"quoted"\n\\')
  })

  test('writes a failed request’s errorDetail after its error code, and none for a success', () => {
    const writes: string[] = []
    const log = createAccessLog({ write: (text) => writes.push(text) }, () => 0)
    log({
      ...context('a'),
      status: 502,
      errorCode: 'LB_ERR_UPSTREAM_TLS',
      errorDetail: 'DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate',
    })
    log(context('b'))
    log.flush()
    const [failed, ok] = writes[0]!
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(Object.keys(failed).slice(-8, -5), ['status', 'error', 'errorDetail'])
    assert.equal(failed.errorDetail, 'DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate')
    assert.equal('errorDetail' in ok, false)
  })

  test('writes an LLM request’s reported tokens after its bytes and its TTFT after upstreamMs, rounded, and leaves out those unknown', () => {
    const writes: string[] = []
    const log = createAccessLog({ write: (text) => writes.push(text) }, () => 0)
    log({ ...context('a'), ttftMs: 151.23456, promptTokens: 11, completionTokens: 3 })
    log({ ...context('b'), promptTokens: 5, completionTokens: 7 })
    log.flush()
    const [streamed, plain] = writes[0]!
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(Object.keys(streamed).slice(-8, -1), [
      'bytesIn',
      'bytesOut',
      'promptTokens',
      'completionTokens',
      'upstreamMs',
      'ttftMs',
      'durationMs',
    ])
    assert.deepEqual(
      [streamed.ttftMs, streamed.promptTokens, streamed.completionTokens],
      [151.235, 11, 3],
    )
    assert.equal('ttftMs' in plain, false)
    assert.deepEqual([plain.promptTokens, plain.completionTokens], [5, 7])
  })
})
