import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { configIssuesOf } from '../../helpers/config-issues.ts'

const withRoutes = (routes: Array<Record<string, unknown>>) => ({
  listeners: [{ name: 'public', port: 8080 }],
  routes,
  upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:9001' }] } },
})

describe('route names, the routes’ label in metrics and logs', () => {
  test('a name used by two routes is refused, naming both paths', () => {
    const raw = withRoutes([
      { name: 'chat', match: { pathPrefix: '/v1' }, upstream: 'api' },
      { name: 'other', upstream: 'api' },
      { name: 'chat', upstream: 'api' },
    ])
    assert.deepEqual(configIssuesOf(raw), [
      `routes[2].name: duplicate route name "chat" (also routes[0].name): the two routes' metrics and logs would merge`,
    ])
  })

  test('a name that is another route’s default route-<index> is refused too', () => {
    const raw = withRoutes([
      { name: 'route-1', match: { pathPrefix: '/v1' }, upstream: 'api' },
      { upstream: 'api' },
    ])
    assert.deepEqual(configIssuesOf(raw), [
      `routes[0].name: duplicate route name "route-1" (also the default name of routes[1]): the two routes' metrics and logs would merge`,
    ])
  })

  test('distinct names, and a route named after its own default, are accepted', () => {
    const raw = withRoutes([
      { name: 'route-0', match: { pathPrefix: '/v1' }, upstream: 'api' },
      { match: { pathPrefix: '/v2' }, upstream: 'api' },
      { name: 'rest', upstream: 'api' },
    ])
    assert.deepEqual(
      parseConfigObject(raw, {}).routes.map((route) => route.name),
      ['route-0', undefined, 'rest'],
    )
  })
})

describe('"none", the metrics label of requests no route, upstream or endpoint took', () => {
  test('is refused as a route name, an upstream name or an endpoint id, naming the path', () => {
    const raw = {
      ...withRoutes([
        { name: 'none', match: { pathPrefix: '/v1' }, upstream: 'none' },
        { upstream: 'api' },
      ]),
      upstreams: {
        api: { endpoints: [{ url: 'http://127.0.0.1:9001', id: 'none' }] },
        none: { endpoints: [{ url: 'http://127.0.0.1:9002' }] },
      },
    }
    assert.deepEqual(configIssuesOf(raw), [
      'routes[0].name: "none" is reserved: metrics label requests that no route took "none"',
      'upstreams.api.endpoints[0].id: "none" is reserved: metrics label requests that no endpoint took "none"',
      'upstreams.none: "none" is reserved: metrics label requests that no upstream took "none"',
    ])
  })

  test('is only reserved as itself: other spellings are accepted', () => {
    const raw = withRoutes([
      { name: 'None', upstream: 'api' },
      { name: 'none-1', upstream: 'api' },
    ])
    assert.deepEqual(
      parseConfigObject(raw, {}).routes.map((route) => route.name),
      ['None', 'none-1'],
    )
  })
})
