import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PickContext, Picker } from '../../../../src/balancer/picker.ts'
import {
  consistentHashSessionOptionsSchema,
  createConsistentHashSessionPicker,
} from '../../../../src/balancer/pickers/consistent-hash-session.ts'
import { hold, makeEndpoints, seededDeps, snapshot } from '../../../conformance/picker-fixtures.ts'
import { countIds, llmRequest } from './llm-fixtures.ts'

const create = (options: Record<string, unknown> = {}, seed = 1): Picker =>
  createConsistentHashSessionPicker(
    consistentHashSessionOptionsSchema.parse(options),
    seededDeps(seed),
  )

const session = (sessionKey: string | undefined, hashKey?: string): PickContext => ({
  attempt: 0,
  llm: llmRequest('hello', { sessionKey }),
  ...(hashKey === undefined ? {} : { hashKey }),
})

describe('consistent-hash-session picker', () => {
  it('defaults to a 160-point ketama ring without bounded load', () => {
    const options = consistentHashSessionOptionsSchema.parse({})
    assert.equal(options.algorithm, 'ring')
    assert.equal(options.vnodesPerWeight, 160)
    assert.equal(options.boundedLoadFactor, 0)
  })

  it('sends every request of a session to one endpoint, from any instance', () => {
    const eligible = makeEndpoints([1, 1, 1, 1, 1])
    const a = create({}, 1)
    const b = create({}, 2)
    for (let i = 0; i < 500; i++) {
      const home = a.pick(eligible, session(`s${i}`))
      assert.equal(a.pick(eligible, session(`s${i}`)), home)
      assert.equal(b.pick(snapshot([...eligible].reverse()), session(`s${i}`)), home)
    }
  })

  it('keys on the session header first and the upstream hashKey second', () => {
    const eligible = makeEndpoints([1, 1, 1, 1, 1])
    const picker = create()
    for (let i = 0; i < 200; i++) {
      assert.equal(
        picker.pick(eligible, session(`s${i}`, `other${i}`)),
        picker.pick(eligible, session(`s${i}`)),
      )
      assert.equal(
        picker.pick(eligible, session(undefined, `k${i}`)),
        picker.pick(eligible, { attempt: 0, hashKey: `k${i}` }),
      )
    }
  })

  it('stays on a session’s endpoint however loaded it is: no bounded load by default', () => {
    const eligible = makeEndpoints([1, 1, 1])
    const picker = create()
    const home = picker.pick(eligible, session('hot'))!
    hold(home, 500)
    assert.equal(picker.pick(eligible, session('hot')), home)
  })

  it('walks on to the session’s next endpoint when its own is excluded', () => {
    const eligible = makeEndpoints([1, 1, 1, 1])
    const picker = create()
    const home = picker.pick(eligible, session('s'))!
    const retry = picker.pick(eligible, { ...session('s'), exclude: new Set([home.id]) })
    assert.ok(retry !== undefined && retry !== home)
    assert.equal(picker.pick(eligible, { ...session('s'), exclude: new Set([home.id]) }), retry)
  })

  it('picks at random, by weight, for a request with no session', () => {
    const eligible = makeEndpoints([1, 3])
    const counts = countIds(create(), eligible, 4_000, () => session(undefined))
    assert.ok(Math.abs(counts.get('e1')! - 3_000) < 150, `e1: ${counts.get('e1')}`)
  })
})
