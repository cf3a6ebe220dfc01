import type { NodeChild } from './child-process.ts'

/**
 * Stops an HTTP run early: when the caller's signal aborts (Ctrl-C, SIGTERM) or when one of the
 * run's processes dies under it. Without it a dead Aya turns the rest of the trace into failed
 * requests and a report that looks like a result, and a dead simulator surfaces as a bare
 * ECONNREFUSED.
 */
export interface RunGuard {
  /** Aborts when the run must stop, its reason saying why; give it to every process the run starts. */
  readonly signal: AbortSignal
  /** Until `close`, `child` ending stops the run, the reason naming it as `name`. */
  watch(name: string, child: NodeChild): void
  /** `work`'s result, or the reason the run stopped, whichever comes first. */
  race<T>(work: Promise<T>): Promise<T>
  /** The run is ending on its own terms: processes ending from now on are expected. */
  close(): void
}

const LAST_LINES = 5

/** A process of the run ended under it; the message names it and shows its last output. */
export class RunProcessDied extends Error {}

export function createRunGuard(outer?: AbortSignal): RunGuard {
  const controller = new AbortController()
  const { signal } = controller
  let closed = false
  const stop = (reason: unknown): void => {
    if (!closed && !signal.aborted) controller.abort(reason)
  }
  const onOuter = (): void => stop(outer!.reason)
  if (outer?.aborted) stop(outer.reason)
  else outer?.addEventListener('abort', onOuter, { once: true })

  return {
    signal,
    watch(name, child) {
      void child.exited.then(() => {
        const output = child.output().split('\n').slice(-LAST_LINES).join('\n')
        stop(
          new RunProcessDied(
            `${name} ${child.exitReason()} during the run${output ? `; its last output:\n${output}` : ''}`,
          ),
        )
      })
    },
    race(work) {
      return new Promise((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason)
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
        work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
      })
    },
    close() {
      closed = true
      outer?.removeEventListener('abort', onOuter)
    },
  }
}
