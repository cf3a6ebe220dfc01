import { join } from 'node:path'
import { Agent, type Dispatcher } from 'undici'
import { findPicker } from '../balancer/picker-registry.ts'
import { parseProfileList } from '../sim/profiles.ts'
import {
  type AyaProcess,
  probeAyaConfigVariant,
  startAyaProcess,
  writeAyaConfig,
} from './aya-process.ts'
import { chatRequestBody, chatRequestHeaders } from './chat-request.ts'
import type { NodeChild } from './child-process.ts'
import { type EventLoopDelay, monitorOwnEventLoop } from './event-loop-probe.ts'
import { createFleetScraper, replicaDeltas, startLoadSampling, validityOf } from './fleet-scrape.ts'
import { createHttpSender } from './http-sender.ts'
import type { PolicyRunHooks, PolicyRunInput } from './policy-run.ts'
import { createPromptBuilder, type PromptBuilder } from './prompt-builder.ts'
import { startRedisProcess } from './redis-process.ts'
import { createRunGuard, type RunGuard } from './run-guard.ts'
import { createRunRecord, type RunRecord } from './run-record.ts'
import { startSimProcess } from './sim-process.ts'
import { streamChat } from './stream-client.ts'
import type { TraceRequest } from './trace-request.ts'

export interface HttpRunEnv {
  readonly ayaBin: string
  /** Where the generated Aya config is written (kept for reproducing the run). */
  readonly workDir: string
  /** Stops the run (Ctrl-C): its processes get SIGTERM and the run rejects with the reason. */
  readonly signal?: AbortSignal | undefined
}

/**
 * HTTP mode for one policy: a fresh simulated fleet in its own process, real Aya processes with
 * the policy in front of it (one per `--routers`, taking requests in turn, sharing state through
 * a Redis of their own with `--shared-state`), and the trace replayed as streaming chat
 * completions measured at the client. Client times are converted back to trace time (× speedup).
 * The run stops, every process it started closed, as soon as `env.signal` aborts or one of its
 * processes dies; it then rejects with why.
 */
export async function runHttpPolicy(
  input: PolicyRunInput,
  env: HttpRunEnv,
  hooks: PolicyRunHooks = {},
): Promise<RunRecord> {
  const guard = createRunGuard(env.signal)
  try {
    return await runGuarded(input, env, hooks, guard)
  } catch (error) {
    // A start or a request that failed because the run was stopped reports why it was stopped.
    throw guard.signal.aborted ? guard.signal.reason : error
  } finally {
    guard.close()
  }
}

async function runGuarded(
  input: PolicyRunInput,
  env: HttpRunEnv,
  hooks: PolicyRunHooks,
  guard: RunGuard,
): Promise<RunRecord> {
  const definition = findPicker(input.policy)
  if (!definition) throw new Error(`unknown policy ${input.policy}`)
  const X = input.speedup
  const model = parseProfileList(input.profile, input.replicas)[0]!.modelName
  const configInput = {
    policy: input.policy,
    usesHashKey: definition.hashKey === 'required',
    model,
    speedup: X,
    timeoutMs: input.timeoutMs,
    scrapeIntervalMs: input.scrapeIntervalMs,
    policyOptions: input.policyOptions,
    admission: input.admission,
  }
  // Which config shape this build of Aya takes (and whether it knows the policy), checked while
  // the fleet starts.
  const { signal } = guard
  const probe = probeAyaConfigVariant(
    env.ayaBin,
    join(env.workDir, `aya-${input.policy}.probe.yaml`),
    configInput,
    signal,
  )
  probe.catch(() => {})
  try {
    const routers = input.routers ?? 1
    // Each process is closed by the `finally` that follows its start, whatever fails after it;
    // the guard stops watching first, so that those exits are not taken for crashes.
    const redis = input.sharedState && routers > 1 ? await startRedisProcess({ signal }) : undefined
    try {
      if (redis) guard.watch(`redis-server (pid ${redis.child.pid})`, redis.child)
      const sim = await startSimProcess({
        ayaBin: env.ayaBin,
        replicas: input.replicas,
        profile: input.profile,
        speedup: X,
        seed: input.seed,
        signal,
      })
      guard.watch(`aya sim (pid ${sim.child.pid})`, sim.child)
      const ayas: AyaProcess[] = []
      try {
        const config = await guard.race(probe)
        const configPath = join(env.workDir, `aya-${input.policy}.yaml`)
        await writeAyaConfig(
          configPath,
          { ...configInput, urls: sim.urls, stateUrl: redis?.url },
          config.variant,
        )
        for (let i = 0; i < routers; i++) {
          const aya = await startAyaProcess(env.ayaBin, configPath, signal)
          ayas.push(aya)
          const which = routers > 1 ? `router ${i + 1} of ${routers}, ` : ''
          guard.watch(`aya start (${which}pid ${aya.child.pid})`, aya.child)
        }
        // Let the routers take their first engine-metrics scrape before traffic starts.
        await guard.race(
          new Promise((r) => setTimeout(r, Math.max(100, (2 * input.scrapeIntervalMs) / X))),
        )
        const record = await guard.race(
          replay(
            input,
            ayas.map((aya) => aya.url),
            sim.urls,
            model,
            hooks,
            [...ayas.map((aya) => aya.child), sim.child],
            signal,
          ),
        )
        const eventLoop = {
          aya: worstDelay(ayas.map((aya) => aya.child.eventLoopDelay())),
          sim: sim.child.eventLoopDelay(),
        }
        Object.assign(record.diagnostics, {
          ayaConfig: config.variant,
          ayaConfigRefused: config.refused.map((r) => r.split('\n')[0]),
          eventLoopDelayMs: { ...(record.diagnostics.eventLoopDelayMs as object), ...eventLoop },
        })
        return record
      } finally {
        guard.close()
        await Promise.allSettled(ayas.map((aya) => aya.close()))
        await sim.close()
      }
    } finally {
      guard.close()
      await redis?.close()
    }
  } finally {
    // Its `aya validate` stops with the run (the guard's signal), but the run ends only once it
    // is gone: a stopped bench would otherwise exit with the check still running.
    await probe.catch(() => {})
  }
}

/** The worst of several processes' event-loop delays, measure by measure. */
function worstDelay(delays: readonly EventLoopDelay[]): EventLoopDelay {
  if (delays.length === 1) return delays[0]!
  return {
    samples: delays.reduce((sum, d) => sum + d.samples, 0),
    p99Ms: Math.max(...delays.map((d) => d.p99Ms)),
    maxMs: Math.max(...delays.map((d) => d.maxMs)),
  }
}

/**
 * Sends 2 × replicas short requests with unique text through Aya before the replay, so that
 * neither Aya nor the simulator is still compiling its hot paths when the trace starts (at a
 * high speedup that shows up as lateness). Their prefixes never match the trace's, and the
 * counters the report uses are read after them.
 */
async function warmUp(
  url: string,
  input: PolicyRunInput,
  model: string,
  prompts: PromptBuilder,
  dispatcher: Dispatcher,
): Promise<void> {
  const inputs = input.trace.requests.map((r) => r.inputTokens).sort((a, b) => a - b)
  const inputTokens = Math.min(4096, Math.max(64, inputs[inputs.length >> 1] ?? 64))
  const requests: TraceRequest[] = Array.from({ length: 2 * input.replicas }, (_, i) => ({
    id: -1 - i,
    atMs: 0,
    inputTokens,
    outputTokens: 8,
  }))
  await Promise.all(
    requests.map((r) =>
      streamChat(
        url,
        JSON.stringify(chatRequestBody(r, prompts, model, 16)),
        chatRequestHeaders(r),
        {
          dispatcher,
          timeoutMs: 30_000,
          onGap: () => {},
        },
      ),
    ),
  )
}

async function replay(
  input: PolicyRunInput,
  ayaUrls: readonly string[],
  simUrls: readonly string[],
  model: string,
  hooks: PolicyRunHooks,
  children: readonly NodeChild[],
  signal: AbortSignal,
): Promise<RunRecord> {
  const { trace } = input
  const X = input.speedup
  const record = createRunRecord()
  const prompts = createPromptBuilder({ seed: input.seed, blockTokens: trace.blockTokens })
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 })
  const scraper = createFleetScraper(simUrls)
  const ownLoop = monitorOwnEventLoop()
  let sampling: { stop(): Promise<void> } | undefined
  try {
    for (const url of ayaUrls) {
      await warmUp(`${url}/v1/chat/completions`, input, model, prompts, dispatcher)
    }
    const before = await scraper.scrapeAll()
    ownLoop.take()
    for (const child of children) child.resetEventLoop()
    const startedAt = performance.now()
    const sender = createHttpSender(
      {
        urls: ayaUrls.map((url) => `${url}/v1/chat/completions`),
        requests: trace.requests,
        speedup: X,
        timeoutMs: input.timeoutMs,
        body: (r) => JSON.stringify(chatRequestBody(r, prompts, model, trace.maxTokens)),
        headers: chatRequestHeaders,
      },
      { dispatcher, record, onProgress: hooks.onProgress, signal },
    )
    sampling = startLoadSampling(
      scraper,
      before,
      { intervalRealMs: input.sampleIntervalMs / X, traceNow: sender.traceNow },
      record.samples,
    )
    await sender.done
    await sampling.stop()
    const after = await scraper.scrapeAll()
    const bench = ownLoop.take()
    record.replicas = replicaDeltas(before, after)
    Object.assign(record.diagnostics, {
      ...validityOf(before, after, input.sloTtftMs),
      eventLoopDelayMs: { bench },
      sendLatenessMs: sender.sendLateness(),
      wallMs: Math.round(performance.now() - startedAt),
    })
    return record
  } finally {
    ownLoop.close()
    await sampling?.stop()
    // A stopped run does not wait for its requests in flight: they only fail from here on.
    if (signal.aborted) await dispatcher.destroy()
    else await dispatcher.close()
    await scraper.close()
  }
}
