import { leaseCostFor } from '../balancer/lease-cost.ts'
import type { PickContext } from '../balancer/picker.ts'
import { prefillEvidenceOf } from '../llm/prefill-pacer.ts'
import type { AdmissionResult, GroupAdmission } from '../proxy/group-admission.ts'
import { NEUTRAL_OUTCOME, type Outcome } from '../upstream/endpoint.ts'
import type { Clock } from '../util/clock.ts'
import type { DesRouter } from './des-fleet.ts'
import type { PreparedRequest } from './prepared-requests.ts'
import type { RequestOutcome, RunRecord } from './run-record.ts'
import type { TraceRequest } from './trace-request.ts'

/** One request in flight in virtual time. */
export interface DesFlight {
  readonly sendMs: number
  /** Gives up on the request: aborts it at the engine, or drops it while the pacer holds it. */
  abort?: () => void
  isTimedOut: boolean
  isSettled: boolean
}

/**
 * Does for one request what Aya and the client do over HTTP: pick an endpoint with the parsed
 * request, charge its lease as the proxy does (cost at dispatch, first token, end), submit to that
 * endpoint's engine and record what a client would have measured. `finish` runs exactly once.
 */
export function dispatchDesRequest(
  request: TraceRequest,
  prepared: PreparedRequest,
  deps: {
    readonly router: DesRouter
    readonly clock: Clock
    readonly record: RunRecord
    readonly maxTokens: number
    readonly finish: (flight: DesFlight, outcome: Omit<RequestOutcome, 'sendMs'>) => void
    /** Late binding (`--admission`): the one admission queue, over this router's policy. */
    readonly admission?: GroupAdmission | undefined
  },
): DesFlight {
  const { router, clock, record, finish } = deps
  const nowMs = clock.now()
  const flight: DesFlight = { sendMs: nowMs, isTimedOut: false, isSettled: false }
  const failed = (status: number, error: string) => ({
    ok: false,
    status,
    error,
    endMs: clock.now(),
    contentChunks: 0,
    itlSumMs: 0,
  })
  // Prompt tokens are counted as the proxy counts them: calibrated online from reported usage.
  const llm = {
    ...prepared.llm,
    promptTokens: router.llmSignals.tokens.count(prepared.llm.servedModel, prepared.llm.promptText),
  }
  const exclude = new Set<string>()
  let placements = 0
  const ctx: PickContext = {
    attempt: 0,
    exclude,
    llm,
    clientIp: '127.0.0.1',
    hashKey: router.usesHashKey ? request.sessionId : undefined,
  }
  const { admission } = deps
  if (!admission) {
    place()
    return flight
  }
  // Late binding, as the proxy does it: the request waits at the router until the policy says an
  // endpoint can take it, and is bound only then.
  const aborted = new AbortController()
  flight.abort = () => aborted.abort()
  const onResult = (result: AdmissionResult): void => {
    if (result.admitted) {
      if (result.avoid !== undefined) exclude.add(result.avoid)
      place()
      return
    }
    finish(flight, flight.isTimedOut ? failed(0, 'client timeout') : failed(503, result.reason))
  }
  const answer = admission.acquire({
    ctx,
    priority: 0,
    sheddable: false,
    tenant: '',
    sizeBytes: 0,
    predictedCost: router.llmSignals.predictedCost(llm),
    signal: aborted.signal,
    onResult,
  })
  if (!(answer instanceof Promise)) onResult(answer)
  return flight

  function place(): void {
    // Counted at its first placement: a prompt the pacer moves is placed again.
    if (placements++ === 0 && prepared.identity.promptTokens !== request.inputTokens) {
      record.promptTokenMismatches++
    }
    const dispatchedMs = clock.now()
    const endpoint = router.pick(ctx)
    if (!endpoint) {
      finish(flight, failed(503, 'no endpoint'))
      return
    }
    const cost = leaseCostFor(router.picker, endpoint, ctx)
    const prefillAheadTokens = endpoint.countedPrefillTokens
    const lease = endpoint.begin(cost)
    const prefillTokens = cost?.prefillTokens ?? llm.promptTokens
    const paced = router.picker.pacer?.enter(endpoint.id, prefillTokens, llm.promptTokens)
    let firstMs: number | undefined
    let lastMs = 0
    let chunks = 0
    let itlSumMs = 0
    // The request no longer occupies the endpoint: its lease, its pacer slot, the queue's view.
    const release = (outcome: Outcome): void => {
      lease.end(outcome)
      paced?.done(false)
      admission?.notify()
    }
    // The client gave up: as over HTTP, that says nothing of how the endpoint serves.
    flight.abort = () => {
      release(NEUTRAL_OUTCOME)
      finish(flight, { ...failed(0, 'client timeout'), endMs: clock.now() })
    }
    if (paced) {
      // Moved by the pacer to an idle engine: placed again by the policy, at most once, as the
      // proxy places it.
      paced.whenReleased(
        submit,
        placements > 1
          ? undefined
          : () => {
              release(NEUTRAL_OUTCOME)
              router.picker.unsent?.(endpoint, ctx)
              place()
            },
      )
    } else {
      submit()
    }

    function submit(): void {
      const handle = router.engineOf(endpoint!).submit(
        { ...prepared.identity, maxTokens: deps.maxTokens, outputTokens: request.outputTokens },
        {
          onToken(token) {
            chunks++
            if (firstMs === undefined) {
              firstMs = token.atMs
              lease.firstToken()
              paced?.done(true)
              admission?.notify()
            } else {
              const gap = token.atMs - lastMs
              itlSumMs += gap
              record.itlGapsMs.push(gap)
            }
            lease.progress(chunks)
            lastMs = token.atMs
          },
          onDone(result) {
            const ok = result.finishReason !== 'abort'
            release({ ok, status: ok ? 200 : 0, latencyMs: 0 })
            router.llmSignals.observe({
              endpoint: endpoint!,
              llm,
              ok,
              ...prefillEvidenceOf(paced, {
                sentAtMs: dispatchedMs,
                prefillAheadTokens,
                prefillTokens,
              }),
              tap: {
                firstTokenAtMs: firstMs,
                lastTokenAtMs: firstMs === undefined ? undefined : lastMs,
                contentEvents: chunks,
                usage: {
                  promptTokens: result.promptTokens,
                  completionTokens: result.completionTokens,
                },
              },
            })
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
              cachedPromptTokens: result.cachedPromptTokens,
            })
          },
          onError(error) {
            const status = error.code === 'engine_closed' ? 503 : 400
            release({ ok: false, status, latencyMs: 0 })
            finish(flight, failed(status, error.code))
          },
        },
      )
      flight.abort = () => handle.abort()
    }
  }
}
