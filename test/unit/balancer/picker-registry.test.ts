import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { findPicker, PICKERS, pickerNames } from '../../../src/balancer/picker-registry.ts'

describe('picker registry', () => {
  it('registers every documented policy under its own name', () => {
    assert.deepEqual(pickerNames(), [
      'aya',
      'consistent-hash',
      'consistent-hash-session',
      'ip-hash',
      'least-connections',
      'least-request',
      'least-response-time',
      'llm-d-prefix-load',
      'llm-d-sticky',
      'random',
      'round-robin',
      'sglang-cache-aware',
      'vllm-prefix-aware',
      'weighted-least-connections',
      'weighted-round-robin',
    ])
    for (const [name, definition] of Object.entries(PICKERS)) assert.equal(definition.name, name)
  })

  it('gives every policy strict options that default from {}', () => {
    for (const definition of Object.values(PICKERS)) {
      assert.equal(definition.optionsSchema.safeParse({}).success, true, definition.name)
      assert.equal(definition.optionsSchema.safeParse({ nope: 1 }).success, false, definition.name)
    }
  })

  it('marks consistent-hash as needing the hashKey selector and consistent-hash-session as falling back to it', () => {
    const uses = (how: string) =>
      Object.values(PICKERS)
        .filter((d) => d.hashKey === how)
        .map((d) => d.name)
    assert.deepEqual(uses('required'), ['consistent-hash'])
    assert.deepEqual(uses('fallback'), ['consistent-hash-session'])
  })

  it('finds nothing for unknown names or inherited properties', () => {
    assert.equal(findPicker('least-request'), PICKERS['least-request'])
    assert.equal(findPicker('fastest'), undefined)
    assert.equal(findPicker('constructor'), undefined)
  })
})
