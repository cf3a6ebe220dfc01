import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { startAya } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startNamedUpstream } from '../helpers/upstreams.ts'

describe('the access log', () => {
  test('leaves out the credentials of a request target that carries userinfo', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    const targets = ['http://alice:s3cret@api.example/x?q=1', 'ftp://bob:hunter2@files.example/']
    for (const target of targets) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`GET ${target} HTTP/1.1\r\nhost: a.example\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${target}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, target)
    }
    const access = () => aya.logs.filter((line) => line.msg === 'access')
    await eventually(() => access().length === targets.length, 'an access line per request')
    assert.deepEqual(
      access().map((line) => line.url),
      ['http://***@api.example/x?q=1', 'ftp://***@files.example/'],
    )
    const written = JSON.stringify(aya.logs)
    for (const secret of ['s3cret', 'hunter2', 'alice', 'bob'])
      assert.ok(!written.includes(secret), `no ${secret} in the log`)
  })
})
