import type { EndpointCapacity } from '../llm/endpoint-capacity.ts'
import type { Clock, Timer } from '../util/clock.ts'

/**
 * A response that is not streamed shows no first token: its headers come when the whole
 * generation is done. Until then its prompt would count as pending prefill, so every decision in
 * the meantime would see a queue that is long gone, and the pacer would hold the endpoint's next
 * prompts behind it. This calls `onPrefilled` when its prefill should be done instead: the
 * prefill queued ahead of it (router-side accounting, at send time) plus its own, at the
 * endpoint's learned rate. The timer is the caller's to clear once the response ends.
 */
export function predictPrefillEnd(
  options: {
    readonly endpointId: string
    /**
     * Prefill the endpoint is computing when the prompt was sent, its own included: what was sent
     * there and has no first token yet (not what a pacer still holds, which comes after it).
     */
    readonly pendingPrefillTokens: number
  },
  deps: { readonly clock: Clock; readonly capacity: EndpointCapacity },
  onPrefilled: () => void,
): Timer {
  const rate = deps.capacity.get(options.endpointId).prefillTokensPerSec
  const delayMs = (options.pendingPrefillTokens / rate) * 1000
  return deps.clock.setTimer(delayMs, onPrefilled)
}
