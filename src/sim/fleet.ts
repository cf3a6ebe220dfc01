import type { Clock, Timer } from '../util/clock.ts'
import { type EngineServer, startEngineServer } from './engine-server.ts'
import { parseProfileList } from './profiles.ts'
import { createScaledClock } from './scaled-clock.ts'
import type { MetricsDialect } from './sglang-metrics.ts'
import { warmUpSim } from './warm-up.ts'

export interface SimFleetOptions {
  readonly replicas: number
  /** A profile name, or a counted list `h100-llama3-8b:2,a100-llama3-8b:2` adding up to `replicas`. */
  readonly profile: string
  /** Engine time runs this many times faster than real time. Default 1. */
  readonly speedup?: number
  /** Replica i is seeded with `seed + i`. Default 1. */
  readonly seed?: number
  /** Engine-time milliseconds each replica answers 503 after start. Default 0. */
  readonly startupMs?: number
  readonly host?: string
  /** Replica i listens on `port + i`; 0 (the default) gives each its own ephemeral port. */
  readonly port?: number
  /** The names `/metrics` speaks: `vllm` (the default) or `sglang`, for an SGLang fleet's view. */
  readonly metricsDialect?: MetricsDialect
  /** LoRA adapters every replica serves beside the base model (see `EngineServerOptions`). */
  readonly loras?: readonly string[]
}

export interface SimFleetDeps {
  /** Engine time for every replica; by default real time scaled by `speedup`. */
  readonly clock?: Clock
}

export interface SimFleet {
  readonly urls: readonly string[]
  readonly servers: readonly EngineServer[]
  /**
   * Settles once every replica's `startupMs` has passed (at once without one), or when the fleet
   * closes first: until then its engines answer 503, as a loading vLLM is not yet serving.
   */
  readonly ready: Promise<void>
  /** Every replica serves these LoRA adapters from now on, without a restart. */
  setLoras(names: readonly string[]): void
  close(): Promise<void>
}

/** Starts `replicas` simulated vLLM engines, each its own HTTP server, sharing one engine clock. */
export async function createSimFleet(
  options: SimFleetOptions,
  deps: SimFleetDeps = {},
): Promise<SimFleet> {
  const profiles = parseProfileList(options.profile, options.replicas)
  const speedup = options.speedup ?? 1
  const clock = deps.clock ?? createScaledClock({ speedup })
  const basePort = options.port ?? 0
  if (!Number.isInteger(basePort) || basePort < 0 || basePort + profiles.length - 1 > 65_535) {
    throw new Error(
      `port must be an integer in 0–65535 leaving room for ${profiles.length} replicas`,
    )
  }
  for (const profile of new Set(profiles)) warmUpSim(profile)
  const servers: EngineServer[] = []
  try {
    for (const [i, profile] of profiles.entries()) {
      servers.push(
        await startEngineServer(
          {
            profile,
            seed: (options.seed ?? 1) + i,
            startupMs: options.startupMs ?? 0,
            host: options.host ?? '127.0.0.1',
            port: basePort === 0 ? 0 : basePort + i,
            ...(options.metricsDialect === undefined
              ? {}
              : { metricsDialect: options.metricsDialect }),
            ...(options.loras === undefined ? {} : { loras: options.loras }),
          },
          { clock },
        ),
      )
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.close()))
    throw error
  }
  // Each replica started before now, so each one's window has ended by then.
  const startupMs = options.startupMs ?? 0
  let loading: Timer | undefined
  let settle = () => {}
  const ready = new Promise<void>((resolve) => {
    settle = resolve
    if (startupMs > 0) loading = clock.setTimer(startupMs, resolve)
    else resolve()
  })
  return {
    urls: servers.map((s) => s.url),
    servers,
    ready,
    setLoras: (names) => {
      for (const server of servers) server.setLoras(names)
    },
    close: async () => {
      loading?.clear()
      settle()
      await Promise.all(servers.map((s) => s.close()))
    },
  }
}
