import { canTakeFor } from '../balancer/can-take.ts'
import { createGroupAdmission } from '../proxy/group-admission.ts'
import { parseProfileList } from '../sim/profiles.ts'
import { createManualClock } from '../util/manual-clock.ts'
import { createDesFleet, type DesRouter } from './des-fleet.ts'
import { type DesFlight, dispatchDesRequest } from './des-request.ts'
import type { PolicyRunHooks, PolicyRunInput } from './policy-run.ts'
import { createPreparedRequests } from './prepared-requests.ts'
import { createPromptBuilder } from './prompt-builder.ts'
import { createRunRecord, type RequestOutcome, type RunRecord } from './run-record.ts'

/**
 * Virtual-time mode: the same engine model and the same policy code as an HTTP run, without
 * sockets. A manual clock drives N engines, one picker from the registry chooses among Endpoint
 * objects that carry router-side leases (begun at dispatch with the request's cost, first token,
 * end), and engine metrics are snapshotted every scrape interval, so staleness matches HTTP mode.
 * Requests due at the same instant go out in trace order before any engine step runs.
 */
export function runDesPolicy(input: PolicyRunInput, hooks: PolicyRunHooks = {}): RunRecord {
  const run = desRun(input, hooks)
  for (;;) {
    const slice = run.next()
    if (slice.done) return slice.value
  }
}

/** Clock events a run handles between turns of the event loop: about a millisecond of work. */
const SLICE_EVENTS = 2048

/**
 * `runDesPolicy` that gives the event loop a turn every few thousand events, so a SIGINT reaches
 * its handler mid-run: a long virtual-time run would otherwise hold the process until its end,
 * and neither Ctrl-C nor a second one could stop it. Rejects with the signal's reason once it
 * aborts. The turns change nothing the run computes.
 */
export async function runDesPolicyInterruptibly(
  input: PolicyRunInput,
  hooks: PolicyRunHooks = {},
  signal?: AbortSignal,
): Promise<RunRecord> {
  const run = desRun(input, hooks)
  try {
    for (;;) {
      const slice = run.next()
      if (slice.done) return slice.value
      await new Promise((resolve) => setImmediate(resolve))
      signal?.throwIfAborted()
    }
  } finally {
    // An interrupted run closes its fleet too (a no-op once the run has returned).
    run.return(undefined as never)
  }
}

function* desRun(input: PolicyRunInput, hooks: PolicyRunHooks): Generator<void, RunRecord> {
  const { trace } = input
  const clock = createManualClock()
  // Requests reach the router replicas in turn, as an L4 balancer in front would spread them.
  const fleet = createDesFleet(input, clock)
  const profile = parseProfileList(input.profile, input.replicas)[0]!
  const prepared =
    input.prepared ??
    createPreparedRequests({
      prompts: createPromptBuilder({ seed: input.seed, blockTokens: trace.blockTokens }),
      model: profile.modelName,
      maxTokens: trace.maxTokens,
      kvBlockTokens: profile.blockSizeTokens,
    })
  const record = createRunRecord()
  const { requests } = trace
  const total = requests.length
  const progress = { total, sent: 0, done: 0, failed: 0 }
  const inFlight: DesFlight[] = []

  const finish = (flight: DesFlight, outcome: Omit<RequestOutcome, 'sendMs'>): void => {
    flight.isSettled = true
    record.outcomes.push({ sendMs: flight.sendMs, ...outcome })
    progress.done++
    if (!outcome.ok) progress.failed++
    if (progress.done % 64 === 0) hooks.onProgress?.({ ...progress })
  }
  const admissionOf = (router: DesRouter) =>
    input.admission
      ? createGroupAdmission(
          {
            canTake: (ctx, sloMs, without) =>
              canTakeFor(router.picker, router.endpoints, ctx, sloMs, without),
            eligible: () => router.endpoints,
            queued: (ctx) => router.picker.queued?.(router.endpoints, ctx),
          },
          input.admission,
          { clock },
        )
      : undefined
  const perRouter = fleet.routers.map((router) => ({
    router,
    clock,
    record,
    maxTokens: trace.maxTokens,
    finish,
    admission: admissionOf(router),
  }))

  let next = 0
  const scheduleArrival = (): void => {
    const request = requests[next]
    if (!request) return
    clock.setTimer(request.atMs - clock.now(), () => {
      while (next < total && requests[next]!.atMs <= clock.now()) {
        const r = requests[next++]!
        progress.sent++
        const deps = perRouter[(progress.sent - 1) % perRouter.length]!
        const flight = dispatchDesRequest(r, prepared.get(r), deps)
        if (!flight.isSettled) inFlight.push(flight)
      }
      scheduleArrival()
    })
  }

  // Client timeouts: every request has the same budget, so the earliest deadline is the oldest.
  let isTimeoutArmed = false
  const armTimeout = (): void => {
    while (inFlight.length > 0 && inFlight[0]!.isSettled) inFlight.shift()
    const head = inFlight[0]
    if (!head || isTimeoutArmed) return
    isTimeoutArmed = true
    clock.setTimer(head.sendMs + input.timeoutMs - clock.now(), () => {
      isTimeoutArmed = false
      while (inFlight.length > 0 && inFlight[0]!.sendMs + input.timeoutMs <= clock.now()) {
        const flight = inFlight.shift()!
        if (flight.isSettled) continue
        flight.isTimedOut = true
        flight.abort?.()
      }
    })
  }

  const sample = (): void => {
    record.samples.push(fleet.sample(clock.now()))
    if (progress.done < total) clock.setTimer(input.sampleIntervalMs, sample)
  }

  const startedAt = performance.now()
  fleet.metrics.start()
  sample()
  scheduleArrival()
  // Stays true when the caller stops the run at a yield (the generator's return runs `finally`).
  let isStopped = true
  try {
    let events = 0
    while (progress.done < total) {
      armTimeout()
      if (!clock.runNext()) break
      if (++events % SLICE_EVENTS === 0) yield
    }
    isStopped = false
  } finally {
    if (isStopped) fleet.close()
  }
  // Anything still queued is refused (and recorded) before the results are read.
  for (const deps of perRouter) deps.admission?.close()
  record.replicas = fleet.replicaDeltas()
  Object.assign(record.diagnostics, {
    wallMs: Math.round(performance.now() - startedAt),
    steps: fleet.steps(),
  })
  const pacing = fleet.pacing()
  if (pacing) record.diagnostics.pacing = pacing
  const admissions = perRouter.flatMap((deps) => (deps.admission ? [deps.admission.stats()] : []))
  if (admissions.length > 0) {
    // Several routers' queues: their counters add up (their wait histograms do not, so only a
    // single queue's is reported).
    const rejectedTotal: Record<string, number> = {}
    for (const stats of admissions) {
      for (const [reason, n] of Object.entries(stats.rejectedTotal)) {
        rejectedTotal[reason] = (rejectedTotal[reason] ?? 0) + n
      }
    }
    record.diagnostics.admission = {
      enqueuedTotal: admissions.reduce((sum, stats) => sum + stats.enqueuedTotal, 0),
      admittedTotal: admissions.reduce((sum, stats) => sum + stats.admittedTotal, 0),
      rejectedTotal,
      ...(admissions.length === 1 ? { wait: admissions[0]!.wait } : {}),
    }
  }
  if (perRouter.length > 1) record.diagnostics.routers = perRouter.length
  fleet.close()
  hooks.onProgress?.({ ...progress })
  return record
}
