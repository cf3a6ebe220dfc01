import type { RouteConfig } from './schema.ts'

/** A route's name in metrics and logs: its own, or `route-<index>` for one that gives none. */
export function routeNameOf(route: Pick<RouteConfig, 'name'>, index: number): string {
  return route.name ?? `route-${index}`
}
