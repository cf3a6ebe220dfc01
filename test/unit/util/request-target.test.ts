import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  absoluteFormOf,
  loggableTarget,
  normalizePath,
  pathOf,
  queryOf,
} from '../../../src/util/request-target.ts'

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

describe('absoluteFormOf', () => {
  it('splits an absolute-form target into its authority and its path and query in origin form', () => {
    assert.deepEqual(absoluteFormOf('http://a.example:8080/x?q=1'), {
      authority: 'a.example:8080',
      originForm: '/x?q=1',
    })
    assert.deepEqual(absoluteFormOf('HTTPS://a.example?q'), {
      authority: 'a.example',
      originForm: '/?q',
    })
    assert.deepEqual(absoluteFormOf('http://a.example'), {
      authority: 'a.example',
      originForm: '/',
    })
  })

  it('takes no other target: an asterisk, an authority alone, another scheme, a fragment', () => {
    for (const target of ['*', 'a.example:443', 'ftp://a.example/x', 'http://a.example/#f']) {
      assert.equal(absoluteFormOf(target), undefined, target)
    }
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

describe('loggableTarget', () => {
  it('hides the userinfo of a target with an authority, whatever its scheme', () => {
    assert.equal(loggableTarget('http://u:p@a.example/x?q=1'), 'http://***@a.example/x?q=1')
    assert.equal(loggableTarget('HTTPS://token@a.example'), 'HTTPS://***@a.example')
    assert.equal(loggableTarget('ftp://u:p@x@a.example/'), 'ftp://***@a.example/')
  })

  it("hides the userinfo of a CONNECT's authority-form target, which has no scheme", () => {
    assert.equal(loggableTarget('alice:s3cret@a.example:443'), '***@a.example:443')
  })

  it('leaves a target without userinfo as it came, an @ in its path or query too', () => {
    for (const target of [
      '/a@b',
      '/x?mail=a@b',
      'http://a.example/@x',
      'http://a.example?u=@',
      '*',
    ]) {
      assert.equal(loggableTarget(target), target)
    }
  })
})
