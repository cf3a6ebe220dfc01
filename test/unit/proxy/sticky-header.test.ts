import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { KeySource } from '../../../src/proxy/key-selector.ts'
import { createStickyHeader } from '../../../src/proxy/sticky-header.ts'
import { createMemoryState } from '../../../src/state/memory-state.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const session: KeySource = {
  headers: { 'x-session-id': 's1' },
  path: '/',
  clientIp: '127.0.0.1',
  routeName: 'r',
}
const options = { upstream: 'web', header: 'x-session-id', ttlMs: 60_000 }

describe('header affinity (sticky: { header })', () => {
  test('keeps the first binding when two replicas race to bind a new session', async () => {
    const state = createMemoryState({ clock: createManualClock() })
    const a = createStickyHeader(options, { state })
    const b = createStickyHeader(options, { state })
    // Both looked the session up before either bound it.
    assert.equal(await a.lookup(session), undefined)
    assert.equal(await b.lookup(session), undefined)
    await a.bind(session, 'e1', undefined)
    await b.bind(session, 'e2', undefined)
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(await a.lookup(session), 'e1')
    assert.equal(await b.lookup(session), 'e1')
  })

  test('replaces a binding to an endpoint that is gone', async () => {
    const state = createMemoryState({ clock: createManualClock() })
    const sticky = createStickyHeader(options, { state })
    await sticky.bind(session, 'e1', undefined)
    await new Promise((resolve) => setImmediate(resolve))
    // e1 left: the request went to e2, bound to e1 when it was looked up.
    await sticky.bind(session, 'e2', 'e1')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(await sticky.lookup(session), 'e2')
  })
})
