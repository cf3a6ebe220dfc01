import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Dispatcher } from 'undici'
import { forward } from '../../../src/proxy/forward.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

// A pool that never hands the request a connection: every one busy, or a connect that hangs.
const neverConnects = { dispatch: () => true } as unknown as Dispatcher
const sink = { start: () => true, data: () => true, onDrain: () => {}, end: () => {} }

describe('forward', () => {
  test('gives up on a request that got no connection within connectMs + firstByteMs, not firstByteMs alone', async () => {
    const clock = createManualClock()
    const request = {
      path: '/',
      method: 'GET',
      headers: {},
      body: null,
      // Below the connect timeout: a hanging connect must end as its own connect error first.
      firstByteTimeoutMs: 500,
      connectionWaitMs: 2500,
      idleTimeoutMs: 60_000,
    }
    let settled = false
    const handle = forward(neverConnects, request, sink, { clock })
    const outcome = handle.done.then((result) => {
      settled = true
      return result
    })
    clock.advance(2499)
    await Promise.resolve()
    assert.equal(settled, false, 'still waiting within connectMs + firstByteMs')
    clock.advance(1)
    const { error, sentUpstream } = await outcome
    assert.equal(error?.code, 'LB_ERR_FIRST_BYTE_TIMEOUT')
    assert.equal(sentUpstream, false, 'no connection took it')
  })
})
