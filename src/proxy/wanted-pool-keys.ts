import { poolKeyOf } from '../upstream/pool-registry.ts'
import type { ProxyRuntime } from './proxy-runtime.ts'

/**
 * The connection pools a config can use: each endpoint of each upstream, at the upstream's own
 * connect timeout and at every route's override of it (a model deployment can send any route to
 * any upstream), for primary and mirrored traffic. A key here that no request uses costs nothing:
 * pools are made when first asked for.
 */
export function wantedPoolKeys(runtime: ProxyRuntime): Set<string> {
  const connectOverrides = new Set<number>()
  for (const route of runtime.config.routes) {
    if (route.timeouts?.connectMs !== undefined) connectOverrides.add(route.timeouts.connectMs)
  }
  const keys = new Set<string>()
  for (const upstream of runtime.upstreams.values()) {
    const connectTimeouts = new Set([upstream.timeouts.connectMs, ...connectOverrides])
    for (const endpoint of upstream.group.endpoints()) {
      const maxConnections = upstream.maxConnections
      for (const connectTimeoutMs of connectTimeouts) {
        keys.add(poolKeyOf(endpoint.spec.origin, { connectTimeoutMs, maxConnections }))
      }
      keys.add(
        poolKeyOf(endpoint.spec.origin, {
          connectTimeoutMs: upstream.timeouts.connectMs,
          maxConnections,
          purpose: 'shadow',
        }),
      )
    }
  }
  return keys
}
