import { Writable } from 'node:stream'
import { request } from 'undici'
import { type Aya, type AyaDeps, createAya } from '../../src/aya.ts'
import type { AyaDecision } from '../../src/balancer/pickers/aya-decision.ts'
import { parseConfigObject } from '../../src/config/load.ts'
import { createLogger } from '../../src/observability/logger.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'

export interface RunningAya {
  readonly aya: Aya
  /** Base URL of the first listener. */
  readonly url: string
  readonly adminUrl: string
  /** Parsed JSON log lines written so far. */
  readonly logs: Array<Record<string, unknown>>
  close(): Promise<void>
}

/**
 * Starts a real Aya from a config object, with every listener and the admin on port 0 unless the
 * config says otherwise, and logs captured in memory at the config's `log.level` (default info).
 * `deps` are passed to createAya, the logger aside.
 */
export async function startAya(
  raw: Record<string, unknown>,
  env: Record<string, string> = {},
  deps: Omit<AyaDeps, 'logger'> = {},
): Promise<RunningAya> {
  const withDefaults = {
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    ...raw,
  }
  const config = parseConfigObject(withDefaults, env)
  const logs: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line))
      callback()
    },
  })
  const logger = createLogger({ level: config.log.level, destination })
  const aya = createAya(config, { ...deps, logger })
  const addresses = await aya.start()
  const first = addresses.listeners[0]!
  return {
    aya,
    url: `http://127.0.0.1:${first.port}`,
    adminUrl: `http://127.0.0.1:${addresses.admin.port}`,
    logs,
    close: () => aya.close(2000),
  }
}

/**
 * Aya with one route, `/` to the upstream group `u` (its config: endpoints, timeouts, ...), and
 * no access log unless asked for. Closed after the test.
 */
export async function startAyaTo(
  t: { after(fn: () => Promise<void>): void },
  upstream: Record<string, unknown>,
  options: { readonly accessLog?: boolean } = {},
): Promise<RunningAya> {
  const aya = await startAya({
    log: { access: options.accessLog === true },
    routes: [{ match: { pathPrefix: '/' }, upstream: 'u' }],
    upstreams: { u: upstream },
  })
  t.after(() => aya.close())
  return aya
}

/**
 * Aya with one LLM route (`/v1`, the models gateway) to the model `llama`, served by the upstream
 * `fleet` configured as `fleet` (its policy, `sim` and admission blocks). Closed after the test.
 */
export async function startSimGateway(
  t: { after(fn: () => Promise<void>): void },
  fleet: Record<string, unknown>,
  options: {
    readonly log?: Record<string, unknown>
    readonly routeName?: string
    /** More keys of the one route (`priority`, ...). */
    readonly route?: Record<string, unknown>
    readonly deps?: Omit<AyaDeps, 'logger'>
  } = {},
): Promise<RunningAya> {
  const aya = await startAya(
    {
      ...(options.log ? { log: options.log } : {}),
      routes: [
        {
          ...(options.routeName ? { name: options.routeName } : {}),
          match: { pathPrefix: '/v1' },
          gateway: 'models',
          ...options.route,
        },
      ],
      models: {
        llama: { deployments: [{ upstream: 'fleet', model: 'meta-llama/Llama-3.1-8B-Instruct' }] },
      },
      upstreams: { fleet },
    },
    {},
    options.deps,
  )
  t.after(() => aya.close())
  return aya
}

/**
 * An LLM route to one simulated A100 engine (prefill ~12k tokens/s) under the aya policy with a
 * tight admission block (50-ms TTFT SLO, 300-ms longest wait, sheddable work shed): a small burst
 * queues, sheds and misses deadlines. Closed after the test.
 */
export function startAdmissionGateway(t: {
  after(fn: () => Promise<void>): void
}): Promise<RunningAya> {
  return startSimGateway(t, {
    policy: 'aya',
    sim: { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 },
    admission: { ttftSloMs: 50, maxWaitMs: 300, shedSheddable: true },
  })
}

/** The aya scheduler's full decisions, in order, from the log lines Aya writes at debug level. */
export const loggedDecisions = (aya: RunningAya): AyaDecision[] =>
  aya.logs.filter((l) => l.msg === 'scheduler decision').map((l) => l.decision as AyaDecision)

/** The admin `/metrics` text. */
export const adminMetrics = async (aya: RunningAya): Promise<string> =>
  (await request(`${aya.adminUrl}/metrics`)).body.text()

/** One sample's value in Prometheus text (`labels` as written between the braces), if present. */
export function metricSample(text: string, name: string, labels: string): number | undefined {
  const prefix = `${name}{${labels}} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

/**
 * One Aya replica for the replica-sharing tests: the `aya` policy over `engines` as upstream
 * `fleet` (not scraped), behind the model `llama`, decisions logged, with the given `state`
 * block. Closed after the test.
 */
export async function startLlmReplica(
  t: { after(fn: () => Promise<void>): void },
  state: Record<string, unknown>,
  engines: readonly { readonly url: string }[],
  policyOptions: Record<string, unknown> = {},
): Promise<RunningAya> {
  const aya = await startAya({
    log: { level: 'debug', access: false },
    state,
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: { llama: { deployments: [{ upstream: 'fleet', model: H100_LLAMA3_8B.modelName }] } },
    upstreams: {
      fleet: {
        policy: 'aya',
        policyOptions,
        endpoints: engines.map((engine) => ({ url: engine.url })),
        engineMetrics: false,
      },
    },
  })
  t.after(() => aya.close())
  return aya
}
