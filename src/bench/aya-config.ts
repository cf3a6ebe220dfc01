import type { AdmissionConfig } from '../config/schema.ts'
import { SESSION_HEADER } from './chat-request.ts'
import { replicaId } from './policy-run.ts'

/**
 * The shapes of config the bench can give Aya, best first. `models` is the LLM route
 * (`gateway: models`, parsed by llm-extract, with engine metrics scraped); `route` is a plain
 * proxy route to the same endpoints, for builds without the model registry.
 */
export const AYA_CONFIG_VARIANTS = ['models', 'models-without-engine-metrics', 'route'] as const
export type AyaConfigVariant = (typeof AYA_CONFIG_VARIANTS)[number]

export interface AyaConfigInput {
  readonly policy: string
  /** The policy keys on the upstream's `hashKey`: the session header. */
  readonly usesHashKey: boolean
  readonly urls: readonly string[]
  /** The model name clients ask for, and the name the engines serve. */
  readonly model: string
  readonly speedup: number
  /** Trace-time knobs; every one is divided by `speedup` before Aya sees it. */
  readonly timeoutMs: number
  readonly scrapeIntervalMs: number
  /** The policy's `policyOptions` (`--policy-options`), written into the upstream as given. */
  readonly policyOptions?: Readonly<Record<string, unknown>> | undefined
  /** `--admission`, in trace time: its durations are divided by `speedup` like the others. */
  readonly admission?: AdmissionConfig | undefined
  /** The Redis every router shares state through (`--routers N --shared-state`). */
  readonly stateUrl?: string | undefined
}

/** A trace-time duration as Aya must see it when the simulator runs `speedup` times fast. */
export function realMs(traceMs: number, speedup: number): number {
  return Math.max(1, Math.round(traceMs / speedup))
}

export function ayaConfigFor(
  input: AyaConfigInput,
  variant: AyaConfigVariant,
): Record<string, unknown> {
  const { speedup } = input
  const upstream: Record<string, unknown> = {
    policy: input.policy,
    ...(input.policyOptions && Object.keys(input.policyOptions).length > 0
      ? { policyOptions: input.policyOptions }
      : {}),
    timeouts: {
      connectMs: realMs(Math.min(input.timeoutMs, 5000), speedup),
      firstByteMs: realMs(input.timeoutMs, speedup),
      idleMs: realMs(input.timeoutMs, speedup),
    },
    maxConnectionsPerEndpoint: 4096,
    endpoints: input.urls.map((url, i) => ({ url, id: replicaId(i) })),
  }
  if (input.usesHashKey) upstream.hashKey = { header: SESSION_HEADER }
  if (input.admission) {
    const { admission } = input
    upstream.admission = {
      ...admission,
      ttftSloMs: realMs(admission.ttftSloMs, speedup),
      maxWaitMs: realMs(admission.maxWaitMs, speedup),
      // 0 (shorter requests never pass one) stays 0: realMs would make it 1 ms.
      maxBypassMs: admission.maxBypassMs === 0 ? 0 : realMs(admission.maxBypassMs, speedup),
      recheckMs: realMs(admission.recheckMs, speedup),
      classes: Object.fromEntries(
        Object.entries(admission.classes).map(([name, own]) => [
          name,
          {
            ...(own.ttftSloMs === undefined ? {} : { ttftSloMs: realMs(own.ttftSloMs, speedup) }),
            ...(own.maxWaitMs === undefined ? {} : { maxWaitMs: realMs(own.maxWaitMs, speedup) }),
          },
        ]),
      ),
    }
  }
  if (variant === 'models') {
    upstream.engineMetrics = { scrapeIntervalMs: realMs(input.scrapeIntervalMs, speedup) }
  }
  const isModels = variant !== 'route'
  return {
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    log: { level: 'warn', access: false },
    shutdown: { drainTimeoutMs: 1000 },
    ...(input.stateUrl ? { state: { store: 'redis', url: input.stateUrl } } : {}),
    ...(isModels
      ? { models: { [input.model]: { deployments: [{ upstream: 'fleet', model: input.model }] } } }
      : {}),
    routes: [
      isModels
        ? { name: 'llm', match: { pathPrefix: '/v1' }, gateway: 'models' }
        : { name: 'llm', match: { pathPrefix: '/v1' }, upstream: 'fleet' },
    ],
    upstreams: { fleet: upstream },
  }
}
