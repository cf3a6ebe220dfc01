import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  createClientAddressResolver,
  createTrustedProxyMatcher,
  normalizeAddress,
  validateCidr,
} from '../../../src/proxy/client-address.ts'

describe('createClientAddressResolver', () => {
  const resolve = createClientAddressResolver(['10.0.0.0/8', '192.168.1.1', 'fd00::/8', '::1'])

  it('returns the peer and ignores XFF when nothing is trusted', () => {
    const open = createClientAddressResolver([])
    assert.equal(open('198.51.100.7', '1.2.3.4'), '198.51.100.7')
    assert.equal(open('::ffff:198.51.100.7', undefined), '198.51.100.7')
  })

  it('returns an untrusted peer and ignores the XFF it sent', () => {
    assert.equal(resolve('198.51.100.7', '1.2.3.4, 10.0.0.1'), '198.51.100.7')
  })

  it('returns a trusted peer when there is no XFF', () => {
    assert.equal(resolve('10.0.0.5', undefined), '10.0.0.5')
  })

  it('takes the XFF entry a trusted peer vouches for', () => {
    assert.equal(resolve('10.0.0.5', '203.0.113.9'), '203.0.113.9')
  })

  it('walks right to left past trusted hops to the first untrusted address', () => {
    assert.equal(resolve('10.0.0.5', '6.6.6.6, 203.0.113.9, 10.1.1.1, 192.168.1.1'), '203.0.113.9')
  })

  it('cannot be fooled by a forged entry left of the real client', () => {
    // The client sent "XFF: 10.9.9.9" hoping to look internal; the trusted hop appended the truth.
    assert.equal(resolve('10.0.0.5', '10.9.9.9, 203.0.113.9'), '203.0.113.9')
  })

  it('returns the leftmost entry when every hop is trusted', () => {
    assert.equal(resolve('10.0.0.5', '10.0.0.1, 10.0.0.2'), '10.0.0.1')
  })

  it('stops at an invalid entry and returns the last trusted hop', () => {
    assert.equal(resolve('10.0.0.5', '203.0.113.9, unknown'), '10.0.0.5')
    assert.equal(resolve('10.0.0.5', '203.0.113.9, garbage, 10.0.0.7'), '10.0.0.7')
    assert.equal(
      resolve('10.0.0.5', '1.2.3.4, 10.0.0.7, '),
      '10.0.0.5',
      'an empty entry is invalid',
    )
    assert.equal(resolve('10.0.0.5', ''), '10.0.0.5')
    assert.equal(resolve('10.0.0.5', '300.1.1.1'), '10.0.0.5')
  })

  it('accepts entries with ports, brackets and surrounding spaces', () => {
    assert.equal(resolve('10.0.0.5', ' 203.0.113.9:5123 '), '203.0.113.9')
    assert.equal(resolve('10.0.0.5', '[2001:db8::1]:443'), '2001:db8::1')
    assert.equal(resolve('10.0.0.5', '[2001:db8::2]'), '2001:db8::2')
    assert.equal(resolve('10.0.0.5', '203.0.113.9:65536'), '10.0.0.5', 'not a port')
    assert.equal(resolve('10.0.0.5', '203.0.113.9:'), '10.0.0.5', 'an empty port')
    assert.equal(resolve('10.0.0.5', '[2001:db8::1]x'), '10.0.0.5', 'junk after brackets')
    assert.equal(resolve('10.0.0.5', '[203.0.113.9]'), '10.0.0.5', 'brackets are for IPv6')
  })

  it('matches IPv6 ranges and the IPv6 loopback', () => {
    assert.equal(resolve('::1', '2001:db8::9'), '2001:db8::9')
    assert.equal(resolve('fd12::3', '2001:db8::9, fd00::1'), '2001:db8::9')
  })

  it('treats an IPv4-mapped peer like the IPv4 address it carries', () => {
    assert.equal(resolve('::ffff:10.0.0.5', '203.0.113.9'), '203.0.113.9')
    assert.equal(resolve('::ffff:198.51.100.7', '203.0.113.9'), '198.51.100.7')
    assert.equal(resolve('10.0.0.5', '::ffff:10.1.2.3, ::FFFF:203.0.113.9'), '203.0.113.9')
  })

  it('reads XFF given as an array in order', () => {
    assert.equal(resolve('10.0.0.5', ['203.0.113.9, 10.0.0.1', '10.0.0.2']), '203.0.113.9')
    assert.equal(resolve('10.0.0.5', ['6.6.6.6', '203.0.113.9']), '203.0.113.9')
  })

  it('returns an empty string when the peer address is gone', () => {
    assert.equal(resolve(undefined, '203.0.113.9'), '')
  })

  it('rejects an invalid trusted range when created', () => {
    assert.throws(() => createClientAddressResolver(['10.0.0.0/33']), /invalid trusted proxy/)
    assert.throws(() => createClientAddressResolver(['localhost']), /not an IP address/)
  })

  it('never returns an XFF address when the peer is untrusted (property)', () => {
    const ipv4 = fc.ipV4()
    fc.assert(
      fc.property(fc.array(ipv4, { maxLength: 6 }), ipv4, (entries, peer) => {
        fc.pre(!peer.startsWith('10.') && peer !== '192.168.1.1')
        assert.equal(resolve(peer, entries.join(', ')), peer)
      }),
    )
  })

  it('returns the rightmost untrusted entry behind trusted hops (property)', () => {
    const untrusted = fc.ipV4().filter((ip) => !ip.startsWith('10.') && ip !== '192.168.1.1')
    const trusted = fc.ipV4().map((ip) => `10.${ip.split('.').slice(1).join('.')}`)
    fc.assert(
      fc.property(
        fc.array(fc.oneof(untrusted, trusted), { maxLength: 4 }),
        untrusted,
        fc.array(trusted, { maxLength: 4 }),
        (left, client, hops) => {
          const xff = [...left, client, ...hops].join(', ')
          assert.equal(resolve('10.0.0.5', xff), client)
        },
      ),
    )
  })
})

describe('createTrustedProxyMatcher', () => {
  const isTrusted = createTrustedProxyMatcher(['10.0.0.0/8', '::1'])

  it('matches addresses in range, IPv4-mapped included', () => {
    assert.equal(isTrusted('10.2.3.4'), true)
    assert.equal(isTrusted('::ffff:10.2.3.4'), true)
    assert.equal(isTrusted('::1'), true)
  })

  it('rejects addresses out of range, missing or not addresses', () => {
    assert.equal(isTrusted('11.0.0.1'), false)
    assert.equal(isTrusted(undefined), false)
    assert.equal(isTrusted(''), false)
    assert.equal(isTrusted('not-an-ip'), false)
    assert.equal(createTrustedProxyMatcher([])('10.0.0.1'), false)
  })
})

describe('validateCidr', () => {
  it('accepts addresses and ranges of both families', () => {
    for (const text of ['10.0.0.0/8', '0.0.0.0/0', '192.168.1.1', '::1', 'fd00::/8', '::/0']) {
      assert.equal(validateCidr(text), undefined, text)
    }
    assert.equal(validateCidr('2001:db8::/128'), undefined)
    assert.equal(validateCidr('::ffff:10.0.0.0/104'), undefined)
  })

  it('explains what is wrong with a bad entry', () => {
    assert.match(
      validateCidr('10.0.0.0/33') ?? '',
      /prefix length must be a whole number from 0 to 32/,
    )
    assert.match(validateCidr('fd00::/129') ?? '', /from 0 to 128/)
    assert.match(validateCidr('10.0.0.0/') ?? '', /prefix length/)
    assert.match(validateCidr('10.0.0.0/8/8') ?? '', /prefix length/)
    assert.match(validateCidr('10.0.0.0/-1') ?? '', /prefix length/)
    assert.match(validateCidr('10.0.0.0/ 8') ?? '', /prefix length/)
    assert.match(validateCidr('10.0.0/8') ?? '', /not an IP address or CIDR range/)
    assert.match(validateCidr('') ?? '', /not an IP address/)
    assert.match(validateCidr('fe80::1%eth0') ?? '', /zone indexes/)
  })
})

describe('normalizeAddress', () => {
  it('turns IPv4-mapped IPv6 into IPv4 in its common spellings', () => {
    assert.equal(normalizeAddress('::ffff:10.0.0.1'), '10.0.0.1')
    assert.equal(normalizeAddress('::FFFF:10.0.0.1'), '10.0.0.1')
    assert.equal(normalizeAddress('0:0:0:0:0:ffff:10.0.0.1'), '10.0.0.1')
    assert.equal(normalizeAddress('::ffff:a00:1'), '10.0.0.1')
    assert.equal(normalizeAddress('::ffff:c000:0280'), '192.0.2.128')
  })

  it('lower-cases other IPv6 and leaves IPv4 alone', () => {
    assert.equal(normalizeAddress('2001:DB8::1'), '2001:db8::1')
    assert.equal(normalizeAddress('203.0.113.9'), '203.0.113.9')
    assert.equal(normalizeAddress('::ffff:zz:1'), '::ffff:zz:1')
  })
})
