import type { LlmSignals } from '../llm/llm-signals.ts'
import type { PoolRegistry } from '../upstream/pool-registry.ts'
import type { Clock } from '../util/clock.ts'
import type { Random } from '../util/random.ts'
import type { ProxyRuntime } from './proxy-runtime.ts'
import type { RequestContext, RequestRecord } from './request-context.ts'

/** What the L7 pipeline runs on, shared by every listener. */
export interface HttpProxyDeps {
  readonly clock: Clock
  readonly random: Random
  readonly pools: PoolRegistry
  readonly generateId: () => string
  /** Called exactly once per request, after the response ends or fails. */
  readonly onRequestDone: (ctx: RequestContext) => void
  /** Called once per request the HTTP server answered itself, which the pipeline never saw. */
  readonly onRequestRefused?: ((record: RequestRecord) => void) | undefined
  readonly runtime: () => ProxyRuntime
  /**
   * What Aya learns from LLM traffic: it counts prompt tokens and predicts a request's work
   * (for the admission queue), and is told what each LLM response's tap saw.
   */
  readonly llmSignals: LlmSignals
}
