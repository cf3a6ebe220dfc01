import type { AdmissionConfig } from '../config/schema.ts'
import type { PreparedRequests } from './prepared-requests.ts'
import type { LoadedTrace } from './trace-loader.ts'

/** Everything one policy's run needs; the same for both modes. Times are trace milliseconds. */
export interface PolicyRunInput {
  readonly trace: LoadedTrace
  readonly policy: string
  readonly replicas: number
  /** A profile name or a counted list (`h100-llama3-8b:2,a100-llama3-8b:2`). */
  readonly profile: string
  readonly seed: number
  /** How often the router reads the engines' `/metrics`. */
  readonly scrapeIntervalMs: number
  /** How often per-replica load is sampled for the report's charts. */
  readonly sampleIntervalMs: number
  /** The client gives up on a request after this long: it counts as failed. */
  readonly timeoutMs: number
  /** HTTP mode: the simulator's clock runs this many times faster than real time. */
  readonly speedup: number
  /** The TTFT SLO, for the validity check of HTTP runs. */
  readonly sloTtftMs: number
  /** The policy's `policyOptions` (from `--policy-options`), parsed by its schema; `{}` if absent. */
  readonly policyOptions?: Readonly<Record<string, unknown>> | undefined
  /** Late binding on the one admission queue (`--admission`), durations in trace time. */
  readonly admission?: AdmissionConfig | undefined
  /**
   * Virtual time: router replicas in front of the fleet, each with its own accounting and policy
   * state, taking arriving requests in turn (default 1).
   */
  readonly routers?: number | undefined
  /** Virtual time: the routers share their prefix announcements, as through Redis. */
  readonly sharedState?: boolean | undefined
  /** Virtual time: requests already built for an earlier run of the same trace. */
  readonly prepared?: PreparedRequests | undefined
}

export interface RunProgress {
  readonly total: number
  readonly sent: number
  readonly done: number
  readonly failed: number
}

export interface PolicyRunHooks {
  onProgress?(progress: RunProgress): void
}

/** Endpoint ids are fixed, so hash-based policies place requests alike in both modes. */
export function replicaId(index: number): string {
  return `replica-${index}`
}
