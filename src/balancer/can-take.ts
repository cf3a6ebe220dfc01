import type { Endpoint } from '../upstream/endpoint.ts'
import { boundEndpointOf } from './bound-endpoint.ts'
import type { PickContext, Picker } from './picker.ts'

/**
 * Whether the policy could place the request now within the TTFT SLO, on an endpoint other than
 * `without` when that is given (one held for an urgent request). A request a sticky binding sends
 * to an eligible endpoint is judged on that endpoint alone: that is where it will go. A policy
 * that cannot tell says yes while any endpoint is left. The proxy's upstream groups and the
 * virtual-time bench both ask through here, so late binding judges the same way in both.
 */
export function canTakeFor(
  picker: Picker,
  eligible: readonly Endpoint[],
  ctx: PickContext,
  ttftSloMs: number,
  without?: string,
): boolean {
  const candidates = candidatesFor(eligible, ctx, without)
  return picker.canTake ? picker.canTake(candidates, ctx, ttftSloMs) : candidates.length > 0
}

function candidatesFor(
  eligible: readonly Endpoint[],
  ctx: PickContext,
  without: string | undefined,
): readonly Endpoint[] {
  const bound = boundEndpointOf(eligible, ctx)
  if (bound) return bound.id === without ? [] : [bound]
  return without === undefined ? eligible : eligible.filter((endpoint) => endpoint.id !== without)
}
