import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pathOf, queryOf } from '../../../src/util/request-target.ts'

describe('request targets', () => {
  it('splits the path from the query string at the first ?', () => {
    assert.equal(pathOf('/v1/models?x=1?y'), '/v1/models')
    assert.equal(queryOf('/v1/models?x=1?y'), '?x=1?y')
  })

  it('takes a target without a query as all path', () => {
    assert.equal(pathOf('/healthz'), '/healthz')
    assert.equal(queryOf('/healthz'), '')
    assert.equal(queryOf('/empty?'), '?')
  })
})
