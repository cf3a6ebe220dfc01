import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  appendForwarded,
  HOP_BY_HOP,
  type OutgoingHeaders,
  stripHopByHop,
} from '../../../src/proxy/headers.ts'

/** Copies into a plain object, so deepEqual ignores the null prototype. */
const plain = (headers: OutgoingHeaders) => ({ ...headers })

describe('HOP_BY_HOP', () => {
  it('lists the RFC 9110 connection fields plus the proxy credentials', () => {
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'proxy-authenticate',
      'proxy-authorization',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
    ]) {
      assert.ok(HOP_BY_HOP.has(name), name)
    }
    assert.ok(!HOP_BY_HOP.has('host'))
  })
})

describe('stripHopByHop', () => {
  it('drops hop-by-hop fields and whatever Connection names, from raw headers', () => {
    const out = stripHopByHop([
      'Host',
      'example.com',
      'Connection',
      'close, X-Foo',
      'X-Foo',
      'secret-to-this-hop',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'Proxy-Authorization',
      'Basic abc',
      'Accept',
      'text/html',
    ])
    assert.deepEqual(plain(out), { host: 'example.com', accept: 'text/html' })
  })

  it('honours every Connection header, tokens in any case and spacing', () => {
    const out = stripHopByHop([
      'X-A',
      '1',
      'connection',
      'x-a ,  X-B',
      'X-B',
      '2',
      'CONNECTION',
      ' x-c',
      'X-C',
      '3',
      'X-D',
      '4',
    ])
    assert.deepEqual(plain(out), { 'x-d': '4' })
  })

  it('keeps the fields that say what a message is and where it goes, whatever Connection names', () => {
    const out = stripHopByHop({
      host: 'shop.example',
      'content-type': 'application/json',
      'x-private': 'p',
      connection: 'host, content-type, content-length, x-private',
    })
    assert.equal(out.host, 'shop.example')
    assert.equal(out['content-type'], 'application/json')
    assert.equal(out['x-private'], undefined)
  })

  it('removes a field that Connection names after the field appears', () => {
    const out = stripHopByHop(['X-Early', '1', 'Connection', 'x-early'])
    assert.deepEqual(plain(out), {})
  })

  it('keeps repeated fields as an array in order, lower-casing names', () => {
    const out = stripHopByHop(['Accept', 'a', 'X-Dup', 'one', 'x-dup', 'two', 'X-DUP', 'three'])
    assert.deepEqual(plain(out), { accept: 'a', 'x-dup': ['one', 'two', 'three'] })
  })

  it('accepts parsed headers and a Connection value given as an array', () => {
    const out = stripHopByHop({
      host: 'example.com',
      connection: ['keep-alive', 'X-Foo'],
      'x-foo': 'bar',
      'x-list': ['1', '2'],
      upgrade: 'websocket',
      te: 'trailers',
      trailer: 'x-checksum',
      'content-length': '5',
      'x-missing': undefined,
    })
    assert.deepEqual(plain(out), {
      host: 'example.com',
      'x-list': ['1', '2'],
      'content-length': '5',
    })
  })

  it('merges names that differ only in case in a hand-built record', () => {
    const out = stripHopByHop({
      'X-Tag': 'a',
      'x-tag': ['b', 'c'],
      Connection: 'X-Gone',
      'X-GONE': '1',
    })
    assert.deepEqual(plain(out), { 'x-tag': ['a', 'b', 'c'] })
  })

  it('never mutates the input or its arrays', () => {
    const list = ['1', '2']
    const input = { 'x-list': list, 'x-more': 'x' }
    const out = stripHopByHop({ ...input, 'X-List': '3' })
    assert.deepEqual(list, ['1', '2'])
    assert.deepEqual(out['x-list'], ['1', '2', '3'])
    assert.notEqual(out['x-list'], list)
  })

  it('drops HTTP/2 pseudo-headers', () => {
    const out = stripHopByHop({ ':method': 'GET', ':path': '/', ':authority': 'a', accept: '*/*' })
    assert.deepEqual(plain(out), { accept: '*/*' })
  })

  it('keeps a field called __proto__ as a field, not a prototype', () => {
    const out = stripHopByHop(['__proto__', 'x', 'Accept', 'a'])
    assert.equal(Object.getPrototypeOf(out), null)
    assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, 'x')
    assert.deepEqual(Object.keys(out).sort(), ['__proto__', 'accept'])
  })

  it('ignores a dangling name in an odd-length raw array', () => {
    assert.deepEqual(plain(stripHopByHop(['Accept', 'a', 'X-Dangling'])), { accept: 'a' })
  })

  it('never lets through a hop-by-hop field or a Connection-named one (property)', () => {
    const name = fc.constantFrom(
      'Connection',
      'Keep-Alive',
      'TE',
      'Upgrade',
      'X-A',
      'x-b',
      'Accept',
      'Host',
      'Transfer-Encoding',
    )
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, fc.constantFrom('close', 'x-a', 'X-B, x-a', 'v', '')), {
          maxLength: 12,
        }),
        (pairs) => {
          const raw = pairs.flat()
          const listed = new Set(
            pairs
              .filter(([n]) => n.toLowerCase() === 'connection')
              .flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())),
          )
          for (const key of Object.keys(stripHopByHop(raw))) {
            assert.ok(!HOP_BY_HOP.has(key) && !listed.has(key), key)
          }
        },
      ),
    )
  })
})

describe('appendForwarded', () => {
  it('starts X-Forwarded-For with the peer and sets proto, host and Via', () => {
    const headers = stripHopByHop(['Host', 'api.example.com'])
    appendForwarded({ headers, peerIp: '198.51.100.7', proto: 'https', host: 'api.example.com' })
    assert.deepEqual(plain(headers), {
      host: 'api.example.com',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.com',
      via: '1.1 aya',
    })
  })

  it('appends the peer to the list a trusted proxy sent and keeps its proto and host', () => {
    const headers = stripHopByHop([
      'X-Forwarded-For',
      '203.0.113.9',
      'X-Forwarded-For',
      '10.0.0.1',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'public.example.com',
      'Via',
      '1.1 cdn',
    ])
    appendForwarded({
      headers,
      peerIp: '::ffff:10.0.0.2',
      clientIp: '203.0.113.9',
      proto: 'http',
      host: 'internal:8080',
      trusted: true,
    })
    assert.deepEqual(plain(headers), {
      'x-forwarded-for': '203.0.113.9, 10.0.0.1, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'public.example.com',
      'x-real-ip': '203.0.113.9',
      via: '1.1 cdn, 1.1 aya',
    })
  })

  it('discards every forwarding claim an untrusted peer made', () => {
    const headers = stripHopByHop({
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'admin.internal',
      'x-forwarded-port': '443',
      'x-forwarded-prefix': '/admin',
      'x-real-ip': '127.0.0.1',
      forwarded: 'for=127.0.0.1',
      via: '1.0 somewhere',
    })
    appendForwarded({
      headers,
      peerIp: '198.51.100.7',
      clientIp: '198.51.100.7',
      proto: 'http',
      host: 'api.example.com',
    })
    assert.deepEqual(plain(headers), {
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'api.example.com',
      'x-real-ip': '198.51.100.7',
      via: '1.0 somewhere, 1.1 aya',
    })
  })

  it('discards an untrusted peer’s claims spelled with underscores, which CGI-style upstreams read as the real ones', () => {
    // PHP, WSGI and Rack put X_Forwarded_For and X-Forwarded-For both in HTTP_X_FORWARDED_FOR.
    const headers = stripHopByHop([
      'X_Forwarded_For',
      '127.0.0.1',
      'x_real_ip',
      '127.0.0.1',
      'X-Forwarded_Host',
      'admin.internal',
      'X_Custom_Header',
      'kept',
    ])
    appendForwarded({ headers, peerIp: '198.51.100.7', proto: 'http', host: 'api.example.com' })
    assert.deepEqual(plain(headers), {
      x_custom_header: 'kept',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'api.example.com',
      via: '1.1 aya',
    })
  })

  it('adds no X-Forwarded-For entry when the peer address is gone', () => {
    const headers = stripHopByHop({ 'x-forwarded-for': '203.0.113.9' })
    appendForwarded({ headers, peerIp: '', proto: 'http', host: undefined, trusted: true })
    assert.equal(headers['x-forwarded-for'], '203.0.113.9')
    assert.equal(headers['x-forwarded-host'], undefined)
  })

  it('takes a custom Via entry, or none', () => {
    const custom = stripHopByHop({})
    appendForwarded({ headers: custom, peerIp: '1.2.3.4', proto: 'http', host: 'h', via: '2 edge' })
    assert.equal(custom.via, '2 edge')
    const none = stripHopByHop({})
    appendForwarded({ headers: none, peerIp: '1.2.3.4', proto: 'http', host: 'h', via: false })
    assert.equal(none.via, undefined)
  })
})
