import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { normalizePath, pathOf, queryOf } from '../../../src/util/request-target.ts'

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

describe('normalizePath', () => {
  it('removes dot segments as RFC 3986 does, never above the root', () => {
    for (const [path, normalized] of [
      ['/x/../admin', '/admin'],
      ['/a/./b/', '/a/b/'],
      ['/a/b/..', '/a/'],
      ['/a/b/.', '/a/b/'],
      ['/../../etc/passwd', '/etc/passwd'],
      ['/api/../secret', '/secret'],
      ['/a/.hidden/..x', '/a/.hidden/..x'],
    ] as const) {
      assert.equal(normalizePath(path), normalized, path)
    }
  })

  it('decodes unreserved characters only, upper-casing the escapes it keeps', () => {
    assert.equal(normalizePath('/%61dmin'), '/admin')
    assert.equal(normalizePath('/a%2fb%3F'), '/a%2Fb%3F')
    assert.equal(normalizePath('/%2e%2e/admin'), '/admin')
    assert.equal(normalizePath('/100%'), '/100%')
  })

  it('keeps a path with nothing to normalize as it is, repeated slashes included', () => {
    for (const path of ['/', '/v1/chat/completions', '//double', '/a.b/c.d']) {
      assert.equal(normalizePath(path), path)
    }
  })
})
