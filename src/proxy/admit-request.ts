import type { PickContext } from '../balancer/picker.ts'
import type { LlmSignals } from '../llm/llm-signals.ts'
import type { AdmissionRejectReason } from '../resilience/admission-types.ts'
import { type PrioritiesConfig, resolvePriority } from '../resilience/priority-classes.ts'
import type { GroupAdmission } from './group-admission.ts'
import type { KeySource } from './key-selector.ts'
import type { UpstreamRuntime } from './proxy-runtime.ts'
import type { RequestContext } from './request-context.ts'
import { whenClientGone } from './when-client-gone.ts'

/**
 * Waits on the group's admission queue until the policy can place the request within the TTFT SLO.
 * Returns the rejection when it cannot be started in time (or is shed), undefined once admitted.
 */
export async function admitRequest(
  ctx: RequestContext,
  upstream: UpstreamRuntime,
  keySource: KeySource,
  admission: GroupAdmission,
  request: {
    readonly priorities: PrioritiesConfig
    readonly firstPick: PickContext
    /** The body's size when it is already read (LLM routes); a streamed body counts 0. */
    readonly sizeBytes: number
    /** The first pick's exclusions: an endpoint held for an urgent request joins them. */
    readonly exclude: Set<string>
    readonly llmSignals: LlmSignals
  },
): Promise<{ reason: AdmissionRejectReason; retryAfterMs: number } | undefined> {
  const { priorities } = request
  const raw = ctx.req.headers[priorities.header]
  // The route's priority stands in for a header that is absent or names no class or integer.
  const resolved = resolvePriority(
    Array.isArray(raw) ? raw[0] : raw,
    priorities,
    ctx.route?.config.priority,
  )
  const aborted = new AbortController()
  const stopWatching = whenClientGone(ctx.res, () => aborted.abort())
  const llm = request.firstPick.llm
  let result: Awaited<ReturnType<typeof admission.acquire>>
  try {
    result = await admission.acquire({
      ctx: request.firstPick,
      priority: resolved.priority,
      className: resolved.className,
      sheddable: resolved.sheddable,
      tenant: upstream.tenantKey?.(keySource) ?? '',
      sizeBytes: request.sizeBytes,
      predictedCost: llm ? request.llmSignals.predictedCost(llm) : 1,
      signal: aborted.signal,
    })
  } finally {
    // A keep-alive socket serves many requests: none may leave a listener on it.
    stopWatching()
  }
  if (!result.admitted) return { reason: result.reason, retryAfterMs: result.retryAfterMs }
  if (result.avoid !== undefined) request.exclude.add(result.avoid)
  return undefined
}
