import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createPoolRegistry, poolKeyOf } from '../../../src/upstream/pool-registry.ts'
import { eventually } from '../../helpers/eventually.ts'
import { startUpstream } from '../../helpers/upstreams.ts'

const settings = { connectTimeoutMs: 2000, maxConnections: 4 }

describe('pool registry', () => {
  test('a reload that changes a pool’s settings closes the old pool after its request, and keeps the wanted one', async (t) => {
    const upstream = await startUpstream((_req, res) => res.end('ok'))
    t.after(() => upstream.close())
    const pools = createPoolRegistry()
    t.after(() => pools.close())
    const before = pools.get(upstream.url, settings)
    const after = pools.get(upstream.url, { ...settings, connectTimeoutMs: 1500 })
    const inFlight = before.request({ path: '/', method: 'GET' })
    await pools.retain(new Set([poolKeyOf(upstream.url, { ...settings, connectTimeoutMs: 1500 })]))
    const res = await inFlight
    assert.equal(await res.body.text(), 'ok', 'the request in flight on the old pool finishes')
    assert.equal(before.closed, true)
    assert.equal(after.closed, false)
    assert.equal(pools.size, 1)
    assert.equal(pools.get(upstream.url, { ...settings, connectTimeoutMs: 1500 }), after)
  })

  test('a request still on its way under the old config gets a pool that closes with its last connection', async (t) => {
    // The upstream closes each connection after answering, as a keep-alive timeout would.
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('connection', 'close')
      res.end('late')
    })
    t.after(() => upstream.close())
    const pools = createPoolRegistry()
    t.after(() => pools.close())
    const wanted = { ...settings, connectTimeoutMs: 1500 }
    await pools.retain(new Set([poolKeyOf(upstream.url, wanted)]))
    const straggler = pools.get(upstream.url, settings)
    const res = await straggler.request({ path: '/', method: 'GET' })
    assert.equal(await res.body.text(), 'late')
    await eventually(() => straggler.closed, 'the unwanted pool closes once idle')
    assert.equal(pools.size, 0)
    // A wanted pool outlives its connections: the next request reconnects on it.
    const kept = pools.get(upstream.url, wanted)
    await (await kept.request({ path: '/', method: 'GET' })).body.text()
    await eventually(() => kept.stats.connected === 0, 'the upstream closed the connection')
    assert.equal(kept.closed, false)
    assert.equal(pools.size, 1)
  })
})
