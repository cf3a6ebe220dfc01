import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createSessionTable } from '../../../src/llm/session-table.ts'

describe('session table', () => {
  test('returns the last placement recorded for a session', () => {
    const table = createSessionTable({ maxSessions: 4 })
    table.record(1, 'e0')
    table.record(1, 'e1')
    assert.equal(table.get(1), 'e1')
    assert.equal(table.get(2), undefined)
    assert.equal(table.size, 1)
  })

  test('evicts the least recently recorded session beyond maxSessions', () => {
    const table = createSessionTable({ maxSessions: 2 })
    table.record(1, 'e0')
    table.record(2, 'e0')
    table.record(1, 'e1') // 1 is now the most recent
    table.record(3, 'e0')
    assert.equal(table.size, 2)
    assert.equal(table.get(2), undefined)
    assert.ok(table.get(1))
    assert.ok(table.get(3))
  })
})
