import type { EngineMetricsSource } from '../llm/engine-snapshot.ts'
import type { LlmRequest } from '../llm/llm-request.ts'
import type { LlmSignals } from '../llm/llm-signals.ts'
import type { PrefillPacer, PrefillPacerDeps } from '../llm/prefill-pacer.ts'
import type { PrefixPeers } from '../llm/prefix-peers.ts'
import type { Endpoint, LeaseCost } from '../upstream/endpoint.ts'
import type { Clock } from '../util/clock.ts'
import type { Random } from '../util/random.ts'
import type { DecisionSink } from './pickers/aya-decision.ts'

export interface PickContext {
  /** 0 for the first try; retries and failover count up. */
  readonly attempt: number
  /** Endpoint ids already tried for this request: a picker never returns one of these. */
  readonly exclude?: ReadonlySet<string> | undefined
  /** The request's key from the upstream's `hashKey` selector; undefined when the request lacks it. */
  readonly hashKey?: string | undefined
  /** The client address after `trustedProxies` is applied. */
  readonly clientIp?: string | undefined
  /** Set on LLM routes: the parsed request (model, prompt text, token estimate, stream). */
  readonly llm?: LlmRequest | undefined
  /**
   * The endpoint a sticky binding names, while it is eligible the one the request will go to:
   * late binding judges only it (see `canTakeFor`).
   */
  readonly boundTo?: string | undefined
}

/**
 * Algorithms only choose; the upstream group decides who is eligible.
 * `eligible` is an immutable snapshot: a new array identity means membership or health changed, so
 * pickers that precompute (rings, smooth WRR state) rebuild when the identity changes.
 * Choosing never blocks and allocates little.
 */
export interface Picker {
  readonly name: string
  pick(eligible: readonly Endpoint[], ctx: PickContext): Endpoint | undefined
  /**
   * Optional: what the request `ctx` was just placed with costs `endpoint`, for router-side
   * accounting (for example only the prompt tokens it expects the endpoint not to have cached).
   */
  leaseCost?(endpoint: Endpoint, ctx: PickContext): LeaseCost | undefined
  /**
   * Optional: the request `ctx` placed on `endpoint` never reached it (the client left while it
   * was held, the endpoint left, the connection failed). A policy that assumed otherwise at
   * placement (a prefix now cached there) takes it back.
   */
  unsent?(endpoint: Endpoint, ctx: PickContext): void
  /**
   * Optional, for late binding: whether some endpoint can take the request now, within
   * `ttftSloMs` and its memory headroom. An admission queue holds the request until it can.
   */
  canTake?(eligible: readonly Endpoint[], ctx: PickContext, ttftSloMs: number): boolean
  /**
   * Optional, for late binding: the request `ctx` now waits in the admission queue (once per
   * request, when it is queued; not when it is refused at the door). For explaining decisions.
   */
  queued?(eligible: readonly Endpoint[], ctx: PickContext): void
  /**
   * Optional, for LLM work: paces placed prompts into each endpoint (see `prefill-pacer.ts`). The
   * dispatcher enters every placed LLM request with its lease's prefill tokens and sends it when
   * released.
   */
  readonly pacer?: PrefillPacer | undefined
  /**
   * Optional: the upstream's membership changed to `ids`. A picker that keeps state per endpoint
   * (prefix indexes, pacer lanes) forgets departed endpoints, so membership churn cannot grow it,
   * and what it learned of the members in `forget` (ids that now name another server).
   */
  retain?(ids: ReadonlySet<string>, forget?: ReadonlySet<string>): void
  /**
   * Lets go of what the picker holds open once its group drops it: its pacer (whose held prompts
   * go at once) and any subscription.
   */
  close?(): void
}

export interface PickerDeps {
  readonly clock: Clock
  readonly random: Random
  /** Engines' own metrics, scraped; absent or stale entries read as undefined (unknown). */
  readonly engineMetrics?: EngineMetricsSource | undefined
  /** What Aya has learned from LLM traffic: output-length predictions and endpoint capacity. */
  readonly llmSignals?: LlmSignals | undefined
  /** The other router replicas' prefix announcements, when a shared state store connects them. */
  readonly prefixPeers?: PrefixPeers | undefined
  /**
   * Prompts the other router replicas sent an endpoint that had no first token when last heard,
   * for a pacer to count as the engine's prefill (`PrefillPacerDeps.othersSent`).
   */
  readonly othersSentPrefill?: PrefillPacerDeps['othersSent']
  /** The policy's pacer released a prompt to the endpoint: the other replicas are told. */
  readonly onPrefillSent?: ((endpointId: string) => void) | undefined
  /** Where the policy's scheduler decisions are counted and logged: its own Aya instance's. */
  readonly decisions?: DecisionSink | undefined
}

export function isExcluded(endpoint: Endpoint, ctx: PickContext): boolean {
  return ctx.exclude?.has(endpoint.id) === true
}
