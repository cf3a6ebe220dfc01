import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { startAya } from '../helpers/aya.ts'
import { startNamedUpstream } from '../helpers/upstreams.ts'

/** Sends `count` requests to `url` as a browser would: keeping each cookie it is set. */
async function browse(url: string, count: number) {
  const jar = new Map<string, string>()
  const seen: Array<{ name: string; setCookie: string | undefined }> = []
  for (let i = 0; i < count; i++) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
    const res = await request(url, { headers: cookie ? { cookie } : {} })
    const { name } = (await res.body.json()) as { name: string }
    const setCookie = res.headers['set-cookie'] as string | undefined
    if (setCookie) {
      const pair = setCookie.split(';')[0]!
      const eq = pair.indexOf('=')
      jar.set(pair.slice(0, eq), pair.slice(eq + 1))
    }
    seen.push({ name, setCookie })
  }
  return seen
}

describe('sticky cookies', () => {
  test('keep a client on one endpoint of each group of a split route, with one cookie per group by default', async (t) => {
    const upstreams = await Promise.all(['a1', 'a2', 'b1', 'b2'].map(startNamedUpstream))
    t.after(() => Promise.all(upstreams.map((u) => u.close())))
    const sticky = { cookie: { ttlMs: 60_000 } }
    const aya = await startAya({
      routes: [
        {
          match: { pathPrefix: '/' },
          split: [
            { upstream: 'stable', weight: 1 },
            { upstream: 'canary', weight: 1 },
          ],
        },
      ],
      upstreams: {
        stable: {
          policy: 'round-robin',
          sticky,
          endpoints: upstreams.slice(0, 2).map((u) => ({ url: u.url })),
        },
        canary: {
          policy: 'round-robin',
          sticky,
          endpoints: upstreams.slice(2).map((u) => ({ url: u.url })),
        },
      },
    })
    t.after(() => aya.close())
    const seen = await browse(`${aya.url}/`, 40)
    const stable = new Set(seen.filter((s) => s.name.startsWith('a')).map((s) => s.name))
    const canary = new Set(seen.filter((s) => s.name.startsWith('b')).map((s) => s.name))
    assert.ok(stable.size > 0 && canary.size > 0, 'the split sent requests to both groups')
    assert.equal(stable.size, 1, 'one stable endpoint')
    assert.equal(canary.size, 1, 'one canary endpoint')
    const cookies = seen.flatMap((s) => (s.setCookie ? [s.setCookie.split('=')[0]] : []))
    assert.deepEqual(cookies.toSorted(), ['aya_sticky_canary', 'aya_sticky_stable'])
  })
})
