import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { parseConfigObject } from '../../src/config/load.ts'
import { startAya } from '../helpers/aya.ts'
import { closedPort, startNamedUpstream } from '../helpers/upstreams.ts'

describe('reload', () => {
  test('warns that a changed admin address or port takes effect at the next start, and keeps serving the admin where it is bound', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const raw = (adminPort: number) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: adminPort },
      routes: [{ match: { pathPrefix: '/' }, upstream: 'web' }],
      upstreams: { web: { endpoints: [{ url: upstream.url }] } },
    })
    const aya = await startAya(raw(0))
    t.after(() => aya.close())
    aya.aya.reload(parseConfigObject(raw(await closedPort()), {}))
    const warning = aya.logs.find((l) => l.level === 'warn' && /admin/.test(String(l.msg)))
    assert.ok(warning, 'a warning names the admin change')
    assert.match(String(warning.msg), /next start/)
    assert.equal((await request(`${aya.adminUrl}/ready`)).statusCode, 200)
  })
})
