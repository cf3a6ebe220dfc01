import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createSessionTable } from '../../../src/llm/session-table.ts'

describe('session table', () => {
  test('returns the last placement recorded for a session', () => {
    const table = createSessionTable({ maxSessions: 4 })
    table.record(1, { endpointId: 'e0', contextTokens: 100 })
    table.record(1, { endpointId: 'e1', contextTokens: 250 })
    assert.deepEqual(table.get(1), { endpointId: 'e1', contextTokens: 250 })
    assert.equal(table.get(2), undefined)
    assert.equal(table.size, 1)
  })

  test('evicts the least recently recorded session beyond maxSessions', () => {
    const table = createSessionTable({ maxSessions: 2 })
    table.record(1, { endpointId: 'e0', contextTokens: 1 })
    table.record(2, { endpointId: 'e0', contextTokens: 1 })
    table.record(1, { endpointId: 'e1', contextTokens: 2 }) // a is now the most recent
    table.record(3, { endpointId: 'e0', contextTokens: 1 })
    assert.equal(table.size, 2)
    assert.equal(table.get(2), undefined)
    assert.ok(table.get(1))
    assert.ok(table.get(3))
  })
})
