import type { Timer } from '../util/clock.ts'
import { createSeededRandom, randomInt } from '../util/random.ts'
import { contextLengthError } from './context-length.ts'
import type {
  Engine,
  EngineDeps,
  EngineOptions,
  EngineRequest,
  RequestHandle,
} from './engine-types.ts'
import { fillerToken } from './filler-text.ts'
import { createKvBlockPool } from './kv-block-pool.ts'
import { createScheduler, type StepPlan } from './scheduler.ts'
import type { FinishReason, RequestEvents, RequestResult, SimRequest } from './sim-request.ts'
import { stepTimeMs } from './step-time.ts'

export { contextLengthError } from './context-length.ts'
export type * from './engine-types.ts'

/**
 * A simulated vLLM V1 engine. It runs steps back to back while there is work; each step's duration
 * comes from the profile's step-time model and its end is an absolute deadline on the injected
 * clock, so timer lateness never accumulates: the next step starts at the previous deadline, and
 * every token is stamped with the deadline of the step that produced it.
 */
export function createEngine(options: EngineOptions, deps: EngineDeps): Engine {
  const { profile } = options
  const { clock, observer } = deps
  const random = deps.random ?? createSeededRandom(options.seed ?? 1)
  const maxCatchUpSteps = options.maxCatchUpSteps ?? 256
  const pool = createKvBlockPool(profile.numGpuBlocks)
  const scheduler = createScheduler(profile, pool)
  const arriving = new Map<SimRequest, Timer>()
  const success: Record<FinishReason, number> = { stop: 0, length: 0, abort: 0 }
  let promptTokensTotal = 0
  let generationTokensTotal = 0
  let nextId = 0
  let steps = 0
  let latenessSumMs = 0
  let latenessMaxMs = 0
  let lastDeadlineMs = Number.NEGATIVE_INFINITY
  let inFlight: { plan: StepPlan; startMs: number; deadlineMs: number; timer: Timer } | undefined
  let isClosed = false

  const finish = (request: SimRequest, reason: FinishReason, atMs: number): void => {
    if (request.status === 'finished') return
    if (request.status === 'arriving') {
      arriving.get(request)?.clear()
      arriving.delete(request)
    } else {
      scheduler.remove(request)
    }
    request.status = 'finished'
    success[reason]++
    const result: RequestResult = {
      finishReason: reason,
      promptTokens: request.promptTokens,
      completionTokens: request.numOutput,
      cachedPromptTokens: request.cachedPromptTokens ?? 0,
      arrivalMs: request.arrivalMs,
      firstTokenMs: request.firstTokenMs,
      finishMs: atMs,
      preemptions: request.preemptions,
    }
    observer?.finished?.(result)
    request.events.onDone?.(result)
  }

  const emitToken = (request: SimRequest, atMs: number): void => {
    const index = request.numOutput
    request.numOutput++
    request.numTokens++
    generationTokensTotal++
    if (request.firstTokenMs === undefined) {
      request.firstTokenMs = atMs
      promptTokensTotal += request.promptTokens
      observer?.firstToken?.(
        atMs - request.arrivalMs,
        (request.firstScheduledMs ?? atMs) - request.readyMs,
      )
      request.events.onFirstToken?.(atMs)
    } else {
      observer?.interToken?.(atMs - request.lastTokenMs!)
    }
    request.lastTokenMs = atMs
    request.events.onToken?.({ index, text: fillerToken(request.promptHash, index), atMs })
    if (request.numOutput >= request.targetOutputTokens) {
      finish(request, request.finishReasonAtTarget, atMs)
    }
  }

  const completeStep = (plan: StepPlan, atMs: number): void => {
    for (const { request } of plan.entries) {
      if (request.status !== 'running') continue
      if (request.numComputed >= request.numTokens) emitToken(request, atMs)
    }
  }

  /** Plans the step starting at `startMs`; returns its deadline, or undefined when idle. */
  const planStep = (fromMs: number): number | undefined => {
    let startMs = fromMs
    // An empty plan with work left means the step preempted everything it could not fit (retry
    // at once) or the head of the queue became ready after `startMs` (start when it did).
    for (let attempt = 0; attempt < 4; attempt++) {
      const plan = scheduler.schedule(startMs)
      if (plan.entries.length > 0) {
        for (const { request } of plan.entries) request.firstScheduledMs ??= startMs
        const deadlineMs = startMs + stepTimeMs(profile.stepTime, plan)
        inFlight = { plan, startMs, deadlineMs, timer: { clear() {} } }
        return deadlineMs
      }
      const head = scheduler.waiting[0]
      if (!head) return undefined
      startMs = Math.max(startMs, head.readyMs)
    }
    return undefined
  }

  const armTimer = (): void => {
    if (!inFlight) return
    inFlight.timer = clock.setTimer(inFlight.deadlineMs - clock.now(), onDeadline)
  }

  function onDeadline(): void {
    for (let n = 0; inFlight && n < maxCatchUpSteps; n++) {
      const nowMs = clock.now()
      const { plan, startMs, deadlineMs } = inFlight
      if (deadlineMs > nowMs) break
      const latenessMs = nowMs - deadlineMs
      steps++
      latenessSumMs += latenessMs
      latenessMaxMs = Math.max(latenessMaxMs, latenessMs)
      inFlight = undefined
      lastDeadlineMs = deadlineMs
      completeStep(plan, deadlineMs)
      observer?.step?.({
        startMs,
        durationMs: deadlineMs - startMs,
        latenessMs,
        prefillTokens: plan.prefillTokens,
        decodeSeqs: plan.decodeSeqs,
      })
      if (!isClosed) planStep(deadlineMs)
    }
    armTimer()
  }

  /** Starts a step if the engine is idle. A step never starts before the last one ended. */
  const kick = (atMs: number): void => {
    if (inFlight || isClosed) return
    if (planStep(Math.max(atMs, lastDeadlineMs)) !== undefined) armTimer()
  }

  const outputTarget = (request: EngineRequest): [number, FinishReason] => {
    const cap = request.maxTokens ?? profile.maxModelLen - request.promptTokens
    if (request.outputTokens !== undefined) {
      return request.outputTokens <= cap ? [request.outputTokens, 'stop'] : [cap, 'length']
    }
    if (request.maxTokens !== undefined) return [cap, 'length']
    const seeded = 16 + randomInt(random, 241)
    return seeded <= cap ? [seeded, 'stop'] : [cap, 'length']
  }

  const submit = (input: EngineRequest, events: RequestEvents): RequestHandle => {
    const id = `req-${nextId++}`
    const nowMs = clock.now()
    const [targetOutputTokens, finishReasonAtTarget] = outputTarget(input)
    const request: SimRequest = {
      id,
      promptTokens: input.promptTokens,
      promptBlockHashes: input.promptBlockHashes,
      promptHash: input.promptHash,
      targetOutputTokens: Math.max(1, targetOutputTokens),
      finishReasonAtTarget,
      arrivalMs: nowMs,
      events,
      status: 'arriving',
      readyMs: nowMs + profile.requestOverheadMs,
      numTokens: input.promptTokens,
      numComputed: 0,
      numOutput: 0,
      blocks: [],
      numCachedBlocks: 0,
      blockHashes: input.promptBlockHashes.slice(),
      cachedPromptTokens: undefined,
      firstScheduledMs: undefined,
      firstTokenMs: undefined,
      lastTokenMs: undefined,
      preemptions: 0,
    }
    const handle: RequestHandle = { id, abort: () => abort(request) }
    const tooLong = contextLengthError(profile, input.promptTokens, input.maxTokens)
    const neededBlocks = Math.ceil(
      (input.promptTokens + request.targetOutputTokens) / profile.blockSizeTokens,
    )
    if (isClosed || tooLong || neededBlocks > pool.numUsableBlocks) {
      request.status = 'finished'
      events.onError?.(
        isClosed
          ? { code: 'engine_closed', message: 'the engine is closed' }
          : tooLong
            ? { code: 'context_length_exceeded', message: tooLong }
            : { code: 'kv_capacity_exceeded', message: `needs ${neededBlocks} KV blocks` },
      )
      return handle
    }
    arriving.set(
      request,
      clock.setTimer(profile.requestOverheadMs, () => {
        arriving.delete(request)
        if (request.status !== 'arriving') return
        scheduler.enqueue(request)
        kick(request.readyMs)
      }),
    )
    return handle
  }

  const abort = (request: SimRequest): void => {
    if (request.status === 'finished') return
    finish(request, 'abort', Math.max(clock.now(), lastDeadlineMs))
    kick(clock.now())
  }

  return {
    profile,
    submit,
    stats: () => ({
      running: scheduler.running.length,
      waiting: scheduler.waiting.length,
      kvCacheUsage: pool.usage(),
      numFreeBlocks: pool.numFreeBlocks,
      numCachedBlocks: pool.numCachedBlocks,
      prefixCacheQueries: scheduler.counters.prefixCacheQueries,
      prefixCacheHits: scheduler.counters.prefixCacheHits,
      preemptions: scheduler.counters.preemptions,
      promptTokens: promptTokensTotal,
      generationTokens: generationTokensTotal,
      requestSuccess: { ...success },
      steps,
    }),
    stepLateness: () => ({
      steps,
      meanMs: steps === 0 ? 0 : latenessSumMs / steps,
      maxMs: latenessMaxMs,
    }),
    close() {
      if (isClosed) return
      isClosed = true
      inFlight?.timer.clear()
      inFlight = undefined
      const pending = [...arriving.keys(), ...scheduler.running, ...scheduler.waiting]
      for (const request of pending) {
        arriving.get(request)?.clear()
        request.status = 'finished'
        request.events.onError?.({ code: 'engine_closed', message: 'the engine is closed' })
      }
      arriving.clear()
    },
  }
}
