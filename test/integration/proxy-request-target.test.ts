import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { startAya, startAyaTo } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { openRawClient } from '../helpers/raw-client.ts'
import { startNamedUpstream, startUpstream } from '../helpers/upstreams.ts'

describe('request targets', () => {
  test('accepts the absolute-form, routing and forwarding by its authority instead of Host', async (t) => {
    const api = await startNamedUpstream('api')
    const other = await startNamedUpstream('other')
    t.after(() => Promise.all([api.close(), other.close()]))
    const aya = await startAya({
      log: { access: false },
      routes: [
        { match: { host: 'api.example.com' }, upstream: 'api' },
        { match: { pathPrefix: '/' }, upstream: 'other' },
      ],
      upstreams: {
        api: { endpoints: [{ url: api.url }] },
        other: { endpoints: [{ url: other.url }] },
      },
    })
    t.after(() => aya.close())
    const client = await openRawClient(aya.url)
    t.after(() => client.close())
    client.socket.write(
      'GET http://API.example.com:8080/x/../y?q=1 HTTP/1.1\r\nhost: other.example.com\r\n\r\n',
    )
    await eventually(() => client.received().includes('"name":"api"'), 'the api upstream’s answer')
    assert.match(client.received(), /^HTTP\/1\.1 200 /)
    assert.equal(api.requests.length, 1)
    assert.equal(api.requests[0]!.url, '/y?q=1')
    assert.equal(api.requests[0]!.headers.host, 'API.example.com:8080')

    const query = await openRawClient(aya.url)
    t.after(() => query.close())
    query.socket.write('GET http://api.example.com?q=2 HTTP/1.1\r\nhost: x\r\n\r\n')
    await eventually(() => api.requests.length === 2, 'the authority-only target upstream')
    assert.equal(api.requests[1]!.url, '/?q=2')
  })

  test('answers 400 to an absolute-form target whose authority is not a host, or to an asterisk', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    for (const target of ['http://user@evil.example/', 'http:///x', '*']) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`OPTIONS ${target} HTTP/1.1\r\nhost: a.example\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${target}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, target)
    }
    assert.equal(upstream.requests.length, 0)
  })

  test('answers 400 to an origin-form target with a fragment, as to an absolute-form one, and forwards nothing', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    // A fragment is no part of a request target (RFC 9112 §3.2): passed on, the upstream would
    // cut the path or query Aya routed and hashed by (`/a#?x=1` has no query upstream).
    for (const target of ['/a#frag', '/a?q=1#frag', '/a#?x=1', 'http://a.example/a#frag']) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`GET ${target} HTTP/1.1\r\nhost: a.example\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${target}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, target)
    }
    assert.equal(upstream.requests.length, 0)
  })

  test('answers 400 to a path with a backslash, which an upstream may read as a slash, and forwards nothing', async (t) => {
    // As a Node upstream parses its targets: `\` is `/` to a WHATWG URL parser.
    const upstream = await startUpstream((req, res) => {
      res.end(new URL(req.url ?? '/', 'http://upstream').pathname)
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      log: { access: false },
      routes: [
        { match: { pathPrefix: '/public' }, rewrite: { pathPrefix: '/api/public' }, upstream: 'u' },
      ],
      upstreams: { u: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())
    // Without the check, `/public\..\..\admin` reached the upstream's `/api/admin`.
    for (const target of [
      '/public\\..\\..\\admin',
      '/public/x\\y',
      'http://a.example/public\\..',
      '/public%5C..%5c..%5Cadmin',
    ]) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`GET ${target} HTTP/1.1\r\nhost: a.example\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${target}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, target)
    }
    // In the query it is only data.
    const query = await openRawClient(aya.url)
    t.after(() => query.close())
    query.socket.write('GET /public/x?path=a\\b%5C HTTP/1.1\r\nhost: a.example\r\n\r\n')
    await eventually(() => query.received().includes('/api/public/x'), 'the upstream’s answer')
    assert.equal(upstream.requests.length, 1)
  })

  test('answers 400 to a request with more than one Host line, whatever their values, and forwards nothing', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    // RFC 9112 §3.2: a server MUST answer 400. Node keeps the first and drops the rest, so a proxy
    // in front that believes the last one routes and checks a different host than Aya does.
    for (const hosts of [
      'host: a.example\r\nhost: b.example',
      'Host: a.example\r\nHOST: a.example',
    ]) {
      const client = await openRawClient(aya.url)
      t.after(() => client.close())
      client.socket.write(`GET / HTTP/1.1\r\n${hosts}\r\n\r\n`)
      await eventually(() => client.received().includes('\r\n\r\n'), `an answer to ${hosts}`)
      assert.match(client.received(), /^HTTP\/1\.1 400 /, hosts)
      assert.match(client.received(), /LB_ERR_BAD_REQUEST/)
    }
    assert.equal(upstream.requests.length, 0)
  })

  test('sees every header line of a head within the size limit, however many: a second Host or a Content-Length after 2,000 others', async (t) => {
    const upstream = await startNamedUpstream('u')
    t.after(() => upstream.close())
    const aya = await startAyaTo(t, { endpoints: [{ url: upstream.url }] })
    // Short lines: 2,100 of them stay well within the 16 KiB head.
    const filler = 'a: b\r\n'.repeat(2100)
    const twoHosts = await openRawClient(aya.url)
    t.after(() => twoHosts.close())
    twoHosts.socket.write(`GET / HTTP/1.1\r\nhost: a.example\r\n${filler}host: b.example\r\n\r\n`)
    await eventually(() => twoHosts.received().includes('\r\n\r\n'), 'an answer to two Hosts')
    assert.match(twoHosts.received(), /^HTTP\/1\.1 400 /)
    assert.equal(upstream.requests.length, 0, 'the request with two Hosts went nowhere')

    const withBody = await openRawClient(aya.url)
    t.after(() => withBody.close())
    withBody.socket.write(
      `POST / HTTP/1.1\r\nhost: a.example\r\n${filler}content-length: 5\r\n\r\nhello`,
    )
    await eventually(() => withBody.received().includes('"name":"u"'), 'the upstream’s answer')
    assert.match(withBody.received(), /^HTTP\/1\.1 200 /)
    assert.match(withBody.received(), /"bytes":5/, 'the body reached the upstream whole')
  })
})
