import type { Dispatcher } from 'undici'
import { percentile, sortedNumbers } from './percentiles.ts'
import type { RunProgress } from './policy-run.ts'
import type { RunRecord } from './run-record.ts'
import { streamChat } from './stream-client.ts'
import type { TraceRequest } from './trace-request.ts'

export interface HttpSenderOptions {
  /** Where requests go: in turn, one router after another, as an L4 balancer in front would. */
  readonly urls: readonly string[]
  readonly requests: readonly TraceRequest[]
  readonly speedup: number
  /** Trace milliseconds. */
  readonly timeoutMs: number
  readonly body: (request: TraceRequest) => string
  readonly headers: (request: TraceRequest) => Record<string, string>
  /** How far ahead (real ms) bodies are built, so a burst is not delayed by JSON work. */
  readonly lookaheadMs?: number
}

export interface HttpSender {
  /** Trace time now: real time since the start × speedup. */
  traceNow(): number
  /** Resolves when every request has finished or failed; never, once `signal` aborted. */
  readonly done: Promise<void>
  /** How late sends left against their trace times (trace ms). */
  sendLateness(): { readonly p99Ms: number; readonly maxMs: number }
}

/**
 * Sends every request at its trace time (real time = trace time / speedup) and records what the
 * client saw, in trace time. Bodies are built shortly ahead of their send time.
 */
export function createHttpSender(
  options: HttpSenderOptions,
  deps: {
    readonly dispatcher: Dispatcher
    readonly record: RunRecord
    readonly onProgress?: ((progress: RunProgress) => void) | undefined
    /** Stops sending (the run was stopped): no request is sent and no timer runs after it. */
    readonly signal?: AbortSignal | undefined
  },
): HttpSender {
  const { requests, speedup: X } = options
  const { record } = deps
  const lookaheadMs = options.lookaheadMs ?? 500
  const startReal = performance.now() + 50
  const traceNow = () => (performance.now() - startReal) * X
  const bodies = new Map<number, string>()
  const lateness: number[] = []
  const total = requests.length
  let next = 0
  let built = 0
  let sent = 0
  let finished = 0
  let failed = 0
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const progress = () => deps.onProgress?.({ total, sent, done: finished, failed })
  const progressTimer = setInterval(progress, 250)
  let tickTimer: NodeJS.Timeout | undefined
  const stop = (): void => {
    clearInterval(progressTimer)
    clearTimeout(tickTimer)
  }
  if (deps.signal?.aborted) stop()
  deps.signal?.addEventListener('abort', stop, { once: true })

  const send = (index: number): void => {
    const request = requests[index]!
    const body = bodies.get(index) ?? options.body(request)
    bodies.delete(index)
    const sendReal = performance.now()
    const sendMs = (sendReal - startReal) * X
    lateness.push(Math.max(0, sendMs - request.atMs))
    sent++
    let itlSumMs = 0
    void streamChat(options.urls[index % options.urls.length]!, body, options.headers(request), {
      dispatcher: deps.dispatcher,
      timeoutMs: options.timeoutMs / X,
      onGap: (gapMs) => {
        itlSumMs += gapMs * X
        record.itlGapsMs.push(gapMs * X)
      },
    }).then((r) => {
      if (r.promptTokens !== undefined && r.promptTokens !== request.inputTokens) {
        record.promptTokenMismatches++
      }
      record.outcomes.push({
        sendMs,
        ok: r.ok,
        status: r.status,
        error: r.error,
        firstContentMs:
          r.firstContentMs === undefined ? undefined : (r.firstContentMs - startReal) * X,
        endMs: (r.endMs - startReal) * X,
        contentChunks: r.contentChunks,
        itlSumMs,
        promptTokens: r.promptTokens,
        completionTokens: r.completionTokens,
        cachedPromptTokens: r.cachedPromptTokens,
      })
      finished++
      if (!r.ok) failed++
      if (finished === total) {
        deps.signal?.removeEventListener('abort', stop)
        clearInterval(progressTimer)
        progress()
        resolveDone()
      }
    })
  }

  const tick = (): void => {
    while (next < total && requests[next]!.atMs <= traceNow()) send(next++)
    // Build bodies due within the lookahead, but never for long enough to delay the next send.
    const buildUntilMs = traceNow() + lookaheadMs * X
    const buildStart = performance.now()
    built = Math.max(built, next)
    while (
      built < total &&
      requests[built]!.atMs <= buildUntilMs &&
      performance.now() - buildStart < 5
    ) {
      bodies.set(built, options.body(requests[built]!))
      built++
    }
    if (next >= total) return
    const waitMs = requests[next]!.atMs / X - (performance.now() - startReal)
    tickTimer = setTimeout(tick, Math.max(0, waitMs))
  }
  if (!deps.signal?.aborted) tickTimer = setTimeout(tick, 0)

  return {
    traceNow,
    done,
    sendLateness() {
      const sorted = sortedNumbers(lateness)
      return {
        p99Ms: sorted.length === 0 ? 0 : percentile(sorted, 0.99),
        maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
      }
    },
  }
}
