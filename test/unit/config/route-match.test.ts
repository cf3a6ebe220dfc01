import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { createRouteTable } from '../../../src/proxy/route-table.ts'
import { configIssuesOf } from '../../helpers/config-issues.ts'

const withMatch = (match: Record<string, unknown>) => ({
  listeners: [{ name: 'public', port: 8080 }],
  routes: [{ match, upstream: 'api' }],
  upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:9001' }] } },
})

const TOKEN_ERROR = "expected an HTTP method, a token of letters, digits and !#$%&'*+-.^_`|~"

describe('route match methods', () => {
  test('a method that is not an HTTP token is refused at its path, once', () => {
    assert.deepEqual(configIssuesOf(withMatch({ method: 'FOO BAR' })), [
      `routes[0].match.method: ${TOKEN_ERROR}, got "FOO BAR"`,
    ])
    assert.deepEqual(configIssuesOf(withMatch({ method: ['GET', 'P(ST', ''] })), [
      `routes[0].match.method[1]: ${TOKEN_ERROR}, got "P(ST"`,
      `routes[0].match.method[2]: ${TOKEN_ERROR}, got ""`,
    ])
  })

  test('a token Node answers with 400, and an empty list, are refused: the route would never match', () => {
    assert.deepEqual(configIssuesOf(withMatch({ method: 'FETCH' })), [
      'routes[0].match.method: expected a method Node accepts (node:http METHODS): it answers others with 400, so the route would never match, got "FETCH"',
    ])
    assert.deepEqual(configIssuesOf(withMatch({ method: [] })), [
      'routes[0].match.method: expected at least one method (an empty list matches no request), got []',
    ])
  })

  test('a lower-case method is accepted and matches its upper-case form, the only one Node lets through', () => {
    const config = parseConfigObject(withMatch({ method: ['get', 'PROPFIND', 'M-SEARCH'] }), {})
    const table = createRouteTable(config.routes)
    const request = (method: string) => ({ method, path: '/', host: 'a', headers: {} })
    for (const method of ['GET', 'PROPFIND', 'M-SEARCH'])
      assert.ok(table.match(request(method)), method)
    assert.equal(table.match(request('POST')), undefined)
  })
})
