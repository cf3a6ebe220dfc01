import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { canTakeFor } from '../../../src/balancer/can-take.ts'
import type { Picker } from '../../../src/balancer/picker.ts'
import type { Endpoint } from '../../../src/upstream/endpoint.ts'
import { makeEndpoints } from '../../conformance/picker-fixtures.ts'

// A policy that can take a request only on endpoints it is told about, and says which it judged.
function judging(canOn: ReadonlySet<string>): { picker: Picker; judged: string[][] } {
  const judged: string[][] = []
  const picker: Picker = {
    name: 'judging',
    pick: (eligible) => eligible[0],
    canTake(eligible: readonly Endpoint[]) {
      judged.push(eligible.map((endpoint) => endpoint.id))
      return eligible.some((endpoint) => canOn.has(endpoint.id))
    },
  }
  return { picker, judged }
}

describe('canTakeFor', () => {
  it('judges every eligible endpoint but the held one', () => {
    const { picker, judged } = judging(new Set(['e2']))
    const eligible = makeEndpoints([1, 1, 1])
    assert.equal(canTakeFor(picker, eligible, { attempt: 0 }, 100, 'e1'), true)
    assert.deepEqual(judged, [['e0', 'e2']])
  })

  it('judges a sticky-bound request on its endpoint alone: another with room does not admit it', () => {
    const { picker, judged } = judging(new Set(['e2']))
    const eligible = makeEndpoints([1, 1, 1])
    assert.equal(canTakeFor(picker, eligible, { attempt: 0, boundTo: 'e0' }, 100), false)
    assert.deepEqual(judged, [['e0']])
  })

  it('judges all endpoints when the bound one is not eligible or was excluded', () => {
    const { picker, judged } = judging(new Set(['e2']))
    const eligible = makeEndpoints([1, 1, 1])
    assert.equal(canTakeFor(picker, eligible, { attempt: 0, boundTo: 'gone' }, 100), true)
    const exclude = new Set(['e0'])
    assert.equal(canTakeFor(picker, eligible, { attempt: 1, exclude, boundTo: 'e0' }, 100), true)
    assert.deepEqual(judged, [
      ['e0', 'e1', 'e2'],
      ['e0', 'e1', 'e2'],
    ])
  })

  it('cannot take a request bound to the endpoint held for another', () => {
    const { picker } = judging(new Set(['e0', 'e1']))
    const eligible = makeEndpoints([1, 1])
    assert.equal(canTakeFor(picker, eligible, { attempt: 0, boundTo: 'e0' }, 100, 'e0'), false)
  })
})
