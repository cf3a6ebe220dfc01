import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

export interface LoggerOptions {
  readonly level: string
  /** Defaults to an asynchronous stdout writer, so logging never blocks the event loop. */
  readonly destination?: DestinationStream | undefined
}

export function createLogger(options: LoggerOptions): Logger {
  const destination =
    options.destination ??
    // Writes are batched for throughput; a quiet spell must not hold lines back, and a crash
    // must lose at most the last second of them.
    pino.destination({ dest: 1, sync: false, minLength: 16_000, periodicFlush: 1000 })
  return pino(
    {
      level: options.level,
      base: null,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/** The stream a logger writes to, for writers that format their own lines (the access log). */
export function logDestination(logger: Logger): { write(line: string): unknown } {
  const stream = (
    logger as unknown as Record<symbol, { write(line: string): unknown } | undefined>
  )[pino.symbols.streamSym]
  if (!stream) throw new Error('logger has no destination stream')
  return stream
}

/** Flushes an async destination before exit. */
export function flushLogger(logger: Logger): void {
  logger.flush()
}
