import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Picker } from '../../../../src/balancer/picker.ts'
import {
  createIpHashPicker,
  ipHashOptionsSchema,
  ipHashPicker,
} from '../../../../src/balancer/pickers/ip-hash.ts'
import { ipFor, makeEndpoints, seededDeps } from '../../../conformance/picker-fixtures.ts'

const create = (options: Record<string, unknown> = {}): Picker =>
  createIpHashPicker(ipHashOptionsSchema.parse(options), seededDeps())

describe('ip-hash picker', () => {
  it('sends a client address to the same endpoint, whatever the hash key', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1])
    for (let i = 0; i < 500; i++) {
      const home = picker.pick(eligible, { attempt: 0, clientIp: ipFor(i) })
      assert.equal(
        picker.pick(eligible, { attempt: 0, clientIp: ipFor(i), hashKey: 'other' }),
        home,
      )
    }
  })

  it('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1, 1, 1])
    for (let i = 0; i < 500; i++) {
      const ip = ipFor(i)
      assert.equal(
        picker.pick(eligible, { attempt: 0, clientIp: `::ffff:${ip}` }),
        picker.pick(eligible, { attempt: 0, clientIp: ip }),
      )
    }
  })

  it('spreads IPv6 clients too', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++)
      seen.add(picker.pick(eligible, { attempt: 0, clientIp: `2001:db8::${i.toString(16)}` })!.id)
    assert.equal(seen.size, 3)
  })

  it('keeps a busy client on its endpoint by default: stickiness over balance', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1, 1])
    const picked = new Set<string>()
    for (let i = 0; i < 50; i++) {
      const endpoint = picker.pick(eligible, { attempt: 0, clientIp: '192.0.2.7' })!
      endpoint.begin()
      picked.add(endpoint.id)
    }
    assert.equal(picked.size, 1)
  })

  it('spills a busy client once bounded load is turned on', () => {
    const picker = create({ boundedLoadFactor: 1.25 })
    const eligible = makeEndpoints([1, 1, 1, 1])
    for (let i = 0; i < 50; i++)
      picker.pick(eligible, { attempt: 0, clientIp: '192.0.2.7' })!.begin()
    assert.ok(Math.max(...eligible.map((e) => e.inflight)) <= Math.ceil((1.25 * 50) / 4))
  })

  it('treats a missing or empty address as no key', () => {
    const picker = create()
    const eligible = makeEndpoints([1, 1, 1])
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++)
      seen.add(picker.pick(eligible, { attempt: 0, clientIp: i % 2 ? '' : undefined })!.id)
    assert.equal(seen.size, 3)
  })

  it('reads the client address, not the hashKey selector, and defaults bounded load off', () => {
    assert.equal(ipHashPicker.hashKey, 'ignored')
    assert.equal(ipHashOptionsSchema.parse({}).boundedLoadFactor, 0)
    assert.equal(ipHashOptionsSchema.safeParse({ boundedLoadFactor: 0.5 }).success, false)
  })
})
