import { leaseCostFor } from '../balancer/lease-cost.ts'
import type { PickContext } from '../balancer/picker.ts'
import { findPicker } from '../balancer/picker-registry.ts'
import { parseLlmBody, toLlmRequest } from '../llm/llm-body.ts'
import { createEngine, type Engine, type RequestHandle } from '../sim/engine.ts'
import { parseProfileList } from '../sim/profiles.ts'
import { chatPromptIdentity } from '../sim/sim-tokenizer.ts'
import { Endpoint, type Lease } from '../upstream/endpoint.ts'
import { createManualClock } from '../util/manual-clock.ts'
import { createSeededRandom } from '../util/random.ts'
import { chatRequestBody } from './chat-request.ts'
import { createEmulatedEngineMetrics } from './emulated-engine-metrics.ts'
import { type PolicyRunHooks, type PolicyRunInput, replicaId } from './policy-run.ts'
import { createPromptBuilder } from './prompt-builder.ts'
import { createRunRecord, type RequestOutcome, type RunRecord } from './run-record.ts'

interface InFlight {
  readonly sendMs: number
  handle?: RequestHandle
  isTimedOut: boolean
  isSettled: boolean
}

/**
 * Virtual-time mode: the same engine model and the same policy code as an HTTP run, without
 * sockets. A manual clock drives N engines, one picker from the registry chooses among Endpoint
 * objects that carry router-side leases (begun at dispatch with the request's cost, first token,
 * end), and engine metrics are snapshotted every scrape interval, so staleness matches HTTP mode.
 */
export function runDesPolicy(input: PolicyRunInput, hooks: PolicyRunHooks = {}): RunRecord {
  const { trace, seed } = input
  const definition = findPicker(input.policy)
  if (!definition) throw new Error(`unknown policy ${input.policy}`)
  const clock = createManualClock()
  const profiles = parseProfileList(input.profile, input.replicas)
  const engines = new Map<string, Engine>()
  const endpoints = profiles.map((profile, i) => {
    const id = replicaId(i)
    engines.set(id, createEngine({ profile, seed: seed + i }, { clock }))
    const url = `http://${id}.invalid`
    return new Endpoint({ id, url, origin: url, weight: 1 }, { clock })
  })
  const engineOf = (endpoint: Endpoint): Engine => engines.get(endpoint.id)!
  const eligible = Object.freeze(endpoints.slice())
  const metrics = createEmulatedEngineMetrics(
    { intervalMs: input.scrapeIntervalMs },
    { clock, engines },
  )
  const picker = definition.create(definition.optionsSchema.parse({}), {
    clock,
    random: createSeededRandom(seed),
    engineMetrics: metrics,
  })
  const prompts = createPromptBuilder({ seed, blockTokens: trace.blockTokens })
  const model = profiles[0]!.modelName
  const record = createRunRecord()
  const requests = trace.requests
  const total = requests.length
  let sent = 0
  let done = 0
  let failed = 0
  const report = () => hooks.onProgress?.({ total, sent, done, failed })
  const inFlight: InFlight[] = []

  const finish = (flight: InFlight, outcome: Omit<RequestOutcome, 'sendMs'>): void => {
    flight.isSettled = true
    record.outcomes.push({ sendMs: flight.sendMs, ...outcome })
    done++
    if (!outcome.ok) failed++
    if (done % 64 === 0 || done === total) report()
  }

  const dispatch = (index: number): void => {
    const request = requests[index]!
    const nowMs = clock.now()
    const flight: InFlight = { sendMs: nowMs, isTimedOut: false, isSettled: false }
    sent++
    const body = chatRequestBody(request, prompts, model, trace.maxTokens)
    const parsed = parseLlmBody('openai.chat', body)
    if (!parsed.ok) throw new Error(`bench built an invalid body: ${parsed.message}`)
    const llm = toLlmRequest('openai.chat', parsed.value, model, request.sessionId)
    const pick: PickContext = {
      attempt: 0,
      llm,
      clientIp: '127.0.0.1',
      hashKey: definition.usesHashKey ? request.sessionId : undefined,
    }
    const endpoint = picker.pick(eligible, pick)
    if (!endpoint) {
      finish(flight, {
        ok: false,
        status: 503,
        error: 'no endpoint',
        endMs: nowMs,
        contentChunks: 0,
        itlSumMs: 0,
      })
      return
    }
    const lease: Lease = endpoint.begin(leaseCostFor(picker, endpoint, pick))
    const engine = engineOf(endpoint)
    const identity = chatPromptIdentity(body.messages, engine.profile.blockSizeTokens)
    if (identity.promptTokens !== request.inputTokens) record.promptTokenMismatches++
    let firstMs: number | undefined
    let lastMs = 0
    let chunks = 0
    let itlSumMs = 0
    inFlight.push(flight)
    flight.handle = engine.submit(
      {
        ...identity,
        maxTokens: trace.maxTokens,
        outputTokens: request.outputTokens,
      },
      {
        onToken(token) {
          chunks++
          if (firstMs === undefined) {
            firstMs = token.atMs
            lease.firstToken()
          } else {
            const gap = token.atMs - lastMs
            itlSumMs += gap
            record.itlGapsMs.push(gap)
          }
          lastMs = token.atMs
        },
        onDone(result) {
          const ok = result.finishReason !== 'abort'
          lease.end({ ok, status: ok ? 200 : 0, latencyMs: 0 })
          finish(flight, {
            ok,
            status: ok ? 200 : 0,
            error: flight.isTimedOut ? 'client timeout' : ok ? undefined : 'aborted',
            firstContentMs: firstMs,
            endMs: result.finishMs,
            contentChunks: chunks,
            itlSumMs,
            promptTokens: result.promptTokens,
            completionTokens: result.completionTokens,
          })
        },
        onError(error) {
          const status = error.code === 'engine_closed' ? 503 : 400
          lease.end({ ok: false, status, latencyMs: 0 })
          finish(flight, {
            ok: false,
            status,
            error: error.code,
            endMs: clock.now(),
            contentChunks: 0,
            itlSumMs: 0,
          })
        },
      },
    )
  }

  let next = 0
  const scheduleArrival = (): void => {
    const request = requests[next]
    if (!request) return
    clock.setTimer(request.atMs - clock.now(), () => {
      // Every request due now goes out in trace order before the engines run.
      while (next < total && requests[next]!.atMs <= clock.now()) dispatch(next++)
      scheduleArrival()
    })
  }

  // Client timeouts: every request has the same budget, so the earliest deadline is the oldest.
  let timeoutArmed = false
  const armTimeout = (): void => {
    while (inFlight.length > 0 && inFlight[0]!.isSettled) inFlight.shift()
    const head = inFlight[0]
    if (!head || timeoutArmed || done >= total) return
    timeoutArmed = true
    clock.setTimer(head.sendMs + input.timeoutMs - clock.now(), () => {
      timeoutArmed = false
      while (inFlight.length > 0 && inFlight[0]!.sendMs + input.timeoutMs <= clock.now()) {
        const flight = inFlight.shift()!
        if (flight.isSettled) continue
        flight.isTimedOut = true
        flight.handle?.abort()
      }
      armTimeout()
    })
  }
  const sample = (): void => {
    let queries = 0
    let hits = 0
    const load = endpoints.map((e) => {
      const s = engineOf(e).stats()
      queries += s.prefixCacheQueries
      hits += s.prefixCacheHits
      return s.running + s.waiting
    })
    record.samples.push({ atMs: clock.now(), load, hitRate: queries === 0 ? null : hits / queries })
    if (done < total) clock.setTimer(input.sampleIntervalMs, sample)
  }

  metrics.start()
  sample()
  scheduleArrival()
  const startedAt = performance.now()
  while (done < total) {
    armTimeout()
    if (!clock.runNext()) break
  }
  metrics.close()
  record.replicas = endpoints.map((e) => {
    const s = engineOf(e).stats()
    return {
      id: e.id,
      prefixQueries: s.prefixCacheQueries,
      prefixHits: s.prefixCacheHits,
      preemptions: s.preemptions,
    }
  })
  Object.assign(record.diagnostics, {
    wallMs: Math.round(performance.now() - startedAt),
    steps: endpoints.map((e) => engineOf(e).stats().steps),
  })
  for (const engine of engines.values()) engine.close()
  report()
  return record
}
