import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import {
  createEventLoopAccumulator,
  EVENT_LOOP_PROBE_IMPORT,
  type EventLoopDelay,
  parseProbeLine,
} from './event-loop-probe.ts'
import { exitWithParentImport } from './exit-with-parent.ts'

export interface NodeChild {
  readonly pid: number | undefined
  /** Resolves with the first line of stdout or stderr that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>
  /** Lines of stdout and stderr so far, probe lines excluded. */
  output(): string
  /** The worst event-loop delay the probe reported since `resetEventLoop`. */
  eventLoopDelay(): EventLoopDelay
  resetEventLoop(): void
  readonly exited: Promise<number | null>
  /** How it ended (`exited with code 1`, `was killed by SIGKILL`), or undefined while it runs. */
  exitReason(): string | undefined
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  close(graceMs?: number): Promise<void>
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv
  /**
   * SIGTERM to the child when it aborts: the run it belongs to is over (Ctrl-C, another of its
   * processes died), so whatever awaits the child (its start, say) ends with it.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * Starts `node ARGS` with the event-loop probe preloaded, and a watch that stops the process if
 * the bench dies without closing it. Only this child is ever signalled, by its own handle.
 */
export function spawnNode(args: readonly string[], options: SpawnOptions = {}): NodeChild {
  return spawnChild(
    process.execPath,
    ['--import', EVENT_LOOP_PROBE_IMPORT, '--import', exitWithParentImport(), ...args],
    options,
  )
}

/**
 * Starts `COMMAND ARGS` (a `redis-server`, say) with its output collected as `spawnNode`'s is; a
 * command that cannot be started exits at once, its error its only output line.
 */
export function spawnChild(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): NodeChild {
  const child: ChildProcess = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let exitReason: string | undefined
  const lines: string[] = []
  const waiters = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>()
  const delay = createEventLoopAccumulator()
  const onLine = (line: string): void => {
    const probe = parseProbeLine(line)
    if (probe) {
      delay.add(probe)
      return
    }
    if (lines.length < 2000) lines.push(line)
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter)
        waiter.resolve(line)
      }
    }
  }
  createInterface({ input: child.stdout! }).on('line', onLine)
  createInterface({ input: child.stderr! }).on('line', onLine)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      exitReason ??= signal === null ? `exited with code ${code}` : `was killed by ${signal}`
      resolve(code)
    })
    child.once('error', (error) => {
      exitReason ??= `could not start: ${error.message}`
      onLine(`cannot start ${command}: ${error.message}`)
      resolve(null)
    })
  })
  const { signal } = options
  const terminate = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  }
  if (signal?.aborted) terminate()
  else if (signal) {
    signal.addEventListener('abort', terminate, { once: true })
    void exited.then(() => signal.removeEventListener('abort', terminate))
  }

  return {
    pid: child.pid,
    waitForLine(match, timeoutMs) {
      const seen = lines.find(match)
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (line: string) => {
            clearTimeout(timer)
            resolve(line)
          },
        }
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for output:\n${lines.join('\n')}`),
          )
        }, timeoutMs)
        waiters.add(waiter)
        // Set once `exited` settles: both its handlers write the reason first.
        void exited.then(() => {
          if (!waiters.delete(waiter)) return
          clearTimeout(timer)
          reject(new Error(`${exitReason} before it was ready:\n${lines.join('\n')}`))
        })
      })
    },
    output: () => lines.join('\n'),
    eventLoopDelay: () => delay.result(),
    resetEventLoop: () => delay.reset(),
    exited,
    exitReason: () => exitReason,
    async close(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * The error for a child that failed to get ready, naming it as the run does (`aya start (pid N)`):
 * one that died under the bench (a signal, a crash) is said so, whether or not it was ready yet.
 */
export function notReadyError(name: string, child: NodeChild, error: unknown): unknown {
  return error instanceof Error ? new Error(`${name} (pid ${child.pid}) ${error.message}`) : error
}
