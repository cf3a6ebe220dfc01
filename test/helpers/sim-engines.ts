import type { TestContext } from 'node:test'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import type { EngineProfile } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import type { MetricsDialect } from '../../src/sim/sglang-metrics.ts'
import { warmUpSim } from '../../src/sim/warm-up.ts'

/**
 * Simulated engines, one per profile, on ephemeral ports, sharing one engine clock `speedup`
 * times faster than real time, each profile's hot paths warmed up once first (as
 * `src/sim/fleet.ts` builds a fleet, but with profiles it does not ship), serving `/metrics` in
 * `dialect` (vLLM's names by default). Closed after the test.
 */
export async function startSimEngines(
  t: Pick<TestContext, 'after'>,
  profiles: readonly EngineProfile[],
  speedup: number,
  dialect: MetricsDialect = 'vllm',
): Promise<EngineServer[]> {
  for (const profile of new Set(profiles)) warmUpSim(profile)
  const clock = createScaledClock({ speedup })
  const engines: EngineServer[] = []
  t.after(() => Promise.all(engines.map((engine) => engine.close())).then(() => undefined))
  for (const [i, profile] of profiles.entries()) {
    engines.push(
      await startEngineServer({ profile, seed: i + 1, metricsDialect: dialect }, { clock }),
    )
  }
  return engines
}

/** The id Aya gives the endpoint at this URL (an engine, or a proxy in front of one): host:port. */
export const endpointIdOf = (target: { readonly url: string }): string => new URL(target.url).host
