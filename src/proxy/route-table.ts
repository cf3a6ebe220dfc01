import { routeNameOf } from '../config/route-name.ts'
import type { RouteConfig } from '../config/schema.ts'

/** What a route matcher reads from a request. */
export interface RouteRequest {
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  /** Host header without port, lower-cased. */
  readonly host: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
}

export interface CompiledRoute {
  readonly index: number
  readonly name: string
  readonly config: RouteConfig
  matches(request: RouteRequest): boolean
}

export interface RouteTable {
  readonly routes: readonly CompiledRoute[]
  /** First match wins, in config order. */
  match(request: RouteRequest): CompiledRoute | undefined
}

export function createRouteTable(routes: readonly RouteConfig[]): RouteTable {
  const compiled = routes.map((route, index) => compileRoute(route, index))
  return {
    routes: compiled,
    match(request) {
      for (const route of compiled) if (route.matches(request)) return route
      return undefined
    },
  }
}

function compileRoute(route: RouteConfig, index: number): CompiledRoute {
  const { match } = route
  const checks: Array<(request: RouteRequest) => boolean> = []
  if (match.host !== undefined) checks.push(compileHost(match.host))
  if (match.method !== undefined) {
    const methods = new Set(
      (Array.isArray(match.method) ? match.method : [match.method]).map((m) => m.toUpperCase()),
    )
    checks.push((request) => methods.has(request.method))
  }
  if (match.path !== undefined) {
    const path = match.path
    checks.push((request) => request.path === path)
  }
  if (match.pathPrefix !== undefined && match.pathPrefix !== '/') {
    const prefix = match.pathPrefix
    checks.push((request) => request.path.startsWith(prefix))
  }
  if (match.headers !== undefined) {
    const wanted = Object.entries(match.headers).map(
      ([name, value]) => [name.toLowerCase(), value] as const,
    )
    checks.push((request) =>
      wanted.every(([name, value]) => {
        const actual = request.headers[name]
        return Array.isArray(actual) ? actual.includes(value) : actual === value
      }),
    )
  }
  return {
    index,
    name: routeNameOf(route, index),
    config: route,
    matches: (request) => checks.every((check) => check(request)),
  }
}

/** Exact host, or a leading `*.` wildcard for any subdomain. */
function compileHost(pattern: string): (request: RouteRequest) => boolean {
  const lower = withoutRootDot(pattern.toLowerCase())
  if (lower.startsWith('*.')) {
    const suffix = lower.slice(1)
    return (request) => request.host.endsWith(suffix) && request.host.length > suffix.length
  }
  return (request) => request.host === lower
}

/**
 * Host header → bare lower-case host name (IPv6 literals keep their brackets), without the
 * trailing dot of a fully qualified name: `admin.example.com.` names the same host (RFC 1034
 * §3.1), and the upstream behind a catch-all route may well serve it as that host, so it must
 * not pass the route written for it. nginx strips the dot too.
 */
export function normaliseHost(hostHeader: string | undefined): string {
  if (!hostHeader) return ''
  const lower = hostHeader.toLowerCase()
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']')
    return end === -1 ? lower : lower.slice(0, end + 1)
  }
  const colon = lower.indexOf(':')
  return withoutRootDot(colon === -1 ? lower : lower.slice(0, colon))
}

/** One trailing dot, the DNS root's, dropped; `a..` keeps one and matches nothing it should not. */
function withoutRootDot(name: string): string {
  return name.length > 1 && name.endsWith('.') ? name.slice(0, -1) : name
}
