import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { startAya } from '../helpers/aya.ts'
import { startNamedUpstream } from '../helpers/upstreams.ts'

type TestContext = import('node:test').TestContext

const TTL_MS = 60_000

/** Aya over two round-robin endpoints with the given sticky block, on a manual clock. */
async function startSticky(t: TestContext, sticky: Record<string, unknown>) {
  const upstreams = await Promise.all(['one', 'two'].map(startNamedUpstream))
  t.after(() => Promise.all(upstreams.map((u) => u.close())))
  const clock = createManualClock()
  const aya = await startAya(
    {
      routes: [{ match: { pathPrefix: '/' }, upstream: 'app' }],
      upstreams: {
        app: { policy: 'round-robin', sticky, endpoints: upstreams.map((u) => ({ url: u.url })) },
      },
    },
    {},
    { clock },
  )
  t.after(() => aya.close())
  return { aya, clock }
}

describe('sticky bindings in use', () => {
  test('a cookie is issued again past half its TTL, so a client in use stays bound past the first TTL', async (t) => {
    const { aya, clock } = await startSticky(t, { cookie: { ttlMs: TTL_MS } })
    let cookie = ''
    const visit = async () => {
      const res = await request(`${aya.url}/`, { headers: cookie ? { cookie } : {} })
      const { name } = (await res.body.json()) as { name: string }
      const setCookie = res.headers['set-cookie'] as string | undefined
      if (setCookie) cookie = setCookie.split(';')[0]!
      return { name, issued: setCookie !== undefined }
    }
    const first = await visit()
    assert.equal(first.issued, true)
    clock.advance(20_000)
    assert.deepEqual(await visit(), { name: first.name, issued: false }, 'young: not issued again')
    clock.advance(15_000)
    assert.deepEqual(await visit(), { name: first.name, issued: true }, 'past half its TTL')
    // 85 s after the first binding, 50 s after the last issue: still bound, and issued again.
    clock.advance(50_000)
    assert.deepEqual(await visit(), { name: first.name, issued: true })
  })

  test('a header binding lives its TTL past the session’s last request, not its first', async (t) => {
    const { aya, clock } = await startSticky(t, { header: 'x-session-id', ttlMs: TTL_MS })
    const visit = async () => {
      const res = await request(`${aya.url}/`, { headers: { 'x-session-id': 'conversation-1' } })
      return ((await res.body.json()) as { name: string }).name
    }
    const first = await visit()
    clock.advance(45_000)
    assert.equal(await visit(), first)
    // 90 s after the binding was made: a binding of fixed life would have gone, and round-robin
    // would place the session on the other endpoint.
    clock.advance(45_000)
    assert.equal(await visit(), first)
    clock.advance(TTL_MS + 1)
    assert.notEqual(await visit(), first, 'idle past its TTL: placed afresh')
  })
})
