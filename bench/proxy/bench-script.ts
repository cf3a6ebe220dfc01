// What a benchmark script needs around its `main`: a temp dir removed on the way out, a watchdog,
// and signal handling that stops every server it started (by pid) before exiting.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { killAllNow, stopAll } from './system.ts'

/** The temp dir to remove on the way out, also when stopped by a signal. */
const cleanup: { tempDir?: string; stopping?: boolean } = {}

/** A fresh temp dir, removed by `removeTempDir` (and on a signal or the watchdog) unless kept. */
export function makeTempDir(prefix: string, keep: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  if (!keep) cleanup.tempDir = dir
  return dir
}

export function removeTempDir(): void {
  if (cleanup.tempDir) rmSync(cleanup.tempDir, { recursive: true, force: true })
  delete cleanup.tempDir
}

export interface RunLength {
  /** What the run should take without redos or waits. */
  readonly estimateS: number
  readonly retries: number
  readonly maxWaitS: number
}

/**
 * A backstop only, for a run still going well past its estimate: it stops everything and exits 3.
 * Every redo and every wait for a quiet machine is bounded on its own. Clear it when the run ends.
 */
export function startWatchdog(length: RunLength, log: (line: string) => void): NodeJS.Timeout {
  const budgetS = Math.ceil(length.estimateS * (1.5 + length.retries) + length.maxWaitS + 120)
  const watchdog = setTimeout(() => {
    log(`still running after ${budgetS} s: stopping everything`)
    killAllNow()
    removeTempDir()
    process.exit(3)
  }, budgetS * 1000)
  watchdog.unref()
  return watchdog
}

/** Writes a run's result as JSON, creating its folder; returns the absolute path. */
export function writeResult(path: string, result: unknown): string {
  const out = resolve(path)
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  return out
}

/** The end of a run, however it ends: every server stopped, the watchdog off, the temp dir gone. */
export async function endRun(
  watchdog: NodeJS.Timeout,
  dir: string,
  keep: boolean,
  log: (line: string) => void,
): Promise<void> {
  await stopAll()
  clearTimeout(watchdog)
  if (keep) log(`kept ${dir}`)
  else removeTempDir()
}

/** Runs `main` with the process's arguments; `name` prefixes what is written to stderr. */
export function runAsScript(name: string, main: (argv: string[]) => Promise<number>): void {
  process.on('exit', killAllNow)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${name}: ${signal}: stopping everything\n`)
      cleanup.stopping = true
      void stopAll().finally(() => {
        removeTempDir()
        process.exit(130)
      })
    })
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      killAllNow()
      // A run cut short by a signal fails where it stood; the signal handler reports and exits.
      if (cleanup.stopping) return
      process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`)
      process.exitCode = 2
    },
  )
}
