import { constants } from 'node:os'

/**
 * Why a bench stopped before its reports: the user's Ctrl-C or a SIGTERM (CI's timeout, say).
 * The bench exits as a process killed by that signal would in a shell: 128 + its number.
 */
export class BenchInterrupted extends Error {
  readonly signal: 'SIGINT' | 'SIGTERM'
  readonly exitCode: number

  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`stopped by ${signal}`)
    this.signal = signal
    this.exitCode = 128 + constants.signals[signal]
  }
}
