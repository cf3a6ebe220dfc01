import type { Endpoint } from '../upstream/endpoint.ts'
import type { PickContext } from './picker.ts'

/**
 * The endpoint a sticky binding sends the request to (`ctx.boundTo`) while it is eligible and
 * this request has not tried it yet; otherwise undefined, and the policy places the request.
 * Admission judges, holds and the proxy binds through this one rule.
 */
export function boundEndpointOf(
  eligible: readonly Endpoint[],
  ctx: PickContext,
): Endpoint | undefined {
  const { boundTo } = ctx
  if (boundTo === undefined || ctx.exclude?.has(boundTo) === true) return undefined
  return eligible.find((endpoint) => endpoint.id === boundTo)
}
