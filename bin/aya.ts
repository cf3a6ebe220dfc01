#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { type Aya, type AyaAddresses, createAya, StartInterrupted } from '../src/aya.ts'
import { runBenchCommand } from '../src/bench/bench-command.ts'
import { BenchInterrupted } from '../src/bench/bench-interrupted.ts'
import { ConfigError } from '../src/config/config-error.ts'
import { loadConfigFile } from '../src/config/load.ts'
import { runSimCommand } from '../src/sim/sim-command.ts'

const USAGE = `usage:
  aya start --config FILE
  aya validate --config FILE
  aya sim --replicas N --profile P [--port P] [--speedup X] [--seed S] [...]   (aya sim --help)
  aya bench --trace FILE --policies p1,p2 --replicas N --profile P --out DIR [...]   (aya bench --help)
  aya bench sweep ...   knee search; same options plus --rate-scale-min/-max, --precision
`

/** The only place that touches argv, exit codes and signals. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'start':
      return start(rest)
    case 'validate':
      return validate(rest)
    case 'sim':
      return sim(rest)
    case 'bench':
      return bench(rest)
    case undefined:
      // No command is a usage error: the usage goes with the other errors, to stderr.
      process.stderr.write(USAGE)
      return 2
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE)
      return 0
    default:
      process.stderr.write(`aya: unknown command "${command}"\n${USAGE}`)
      return 2
  }
}

/** `--config FILE`, or 'help' for `--help`/`-h` (as `aya sim` and `aya bench` take them too). */
function configFlag(args: string[]): { config: string } | 'help' {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  })
  if (values.help) return 'help'
  if (!values.config) throw new UsageError('--config FILE is required')
  return { config: values.config }
}

class UsageError extends Error {}

function help(): number {
  process.stdout.write(USAGE)
  return 0
}

async function validate(args: string[]): Promise<number> {
  const flags = configFlag(args)
  if (flags === 'help') return help()
  try {
    await loadConfigFile(flags.config, process.env)
    process.stdout.write('ok\n')
    return 0
  } catch (error) {
    return reportConfigError(error)
  }
}

async function sim(args: string[]): Promise<number> {
  const started = await runSimCommand(args, { stdout: process.stdout, stderr: process.stderr })
  if (typeof started === 'number') return started
  return untilSignal(() => started.close())
}

/**
 * `aya bench`, stopped by SIGINT or SIGTERM: the run ends the processes it started (simulators,
 * Ayas, a redis-server) and removes their temporary files rather than leaving them running. A
 * second signal exits at once.
 */
async function bench(args: string[]): Promise<number> {
  const interrupt = new AbortController()
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    const reason = new BenchInterrupted(signal)
    if (interrupt.signal.aborted) {
      process.stderr.write(`aya bench: ${signal} again, exiting now\n`)
      process.exit(reason.exitCode)
    }
    process.stderr.write(`aya bench: ${signal}, stopping the run and its processes\n`)
    interrupt.abort(reason)
  }
  const onInt = () => onSignal('SIGINT')
  const onTerm = () => onSignal('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  try {
    return await runBenchCommand(
      args,
      { stdout: process.stdout, stderr: process.stderr },
      { signal: interrupt.signal },
    )
  } finally {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
}

/** Waits for SIGTERM or SIGINT, runs `stop`, and resolves with the exit code. */
function untilSignal(stop: () => Promise<unknown>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false
    const onSignal = () => {
      if (stopping) return resolve(1)
      stopping = true
      stop().then(
        () => resolve(0),
        () => resolve(1),
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

/**
 * `aya start`. The signal handlers are installed first, before the config is read, so a signal
 * never finds Node's default (death by signal): SIGTERM or SIGINT while starting stops the start,
 * closes what it opened and exits 0, and SIGHUP while starting reloads once the start completes.
 */
async function start(args: string[]): Promise<number> {
  const flags = configFlag(args)
  if (flags === 'help') return help()
  return new Promise<number>((resolve, reject) => {
    let aya: Aya | undefined
    let isStarted = false
    let stopping = false
    let reloadWhenStarted = false
    const stop = (signal: string) => {
      if (stopping) {
        process.stderr.write(`aya: ${signal} again, exiting now\n`)
        resolve(1)
        return
      }
      stopping = true
      if (aya === undefined) {
        // Still reading the config: nothing is open yet.
        process.stderr.write(`aya: ${signal} while starting, stopping\n`)
        resolve(0)
        return
      }
      // The running config's: a reload may have changed it since the start.
      const drainTimeoutMs = aya.config.shutdown.drainTimeoutMs
      process.stderr.write(
        isStarted
          ? `aya: ${signal}, draining (up to ${drainTimeoutMs} ms)\n`
          : `aya: ${signal} while starting, stopping and closing what started\n`,
      )
      aya.close(drainTimeoutMs).then(
        () => resolve(0),
        (error: Error) => {
          process.stderr.write(`aya: shutdown failed: ${error.message}\n`)
          resolve(1)
        },
      )
    }
    const reload = () => {
      if (aya === undefined || !isStarted) {
        // The file may change after the start read it: read it again once started.
        if (!reloadWhenStarted && !stopping) {
          process.stderr.write('aya: SIGHUP while starting, reloading once started\n')
        }
        reloadWhenStarted = true
        return
      }
      const running = aya
      loadConfigFile(flags.config, process.env).then(
        (next) => {
          // A reload that throws must not end the process serving the running config.
          try {
            running.reload(next)
          } catch (error) {
            process.stderr.write(
              `aya: reload failed, the running config may be in part updated:\n${describe(error)}\n`,
            )
            return
          }
          process.stderr.write('aya: config reloaded\n')
        },
        (error: unknown) => {
          process.stderr.write(
            `aya: reload refused, keeping the running config:\n${describe(error)}\n`,
          )
        },
      )
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', reload)
    process.stderr.write(`aya: starting with ${flags.config}\n`)

    const run = async () => {
      let config: Awaited<ReturnType<typeof loadConfigFile>>
      try {
        config = await loadConfigFile(flags.config, process.env)
      } catch (error) {
        if (!stopping) resolve(reportConfigError(error))
        return
      }
      if (stopping) return
      aya = createAya(config)
      let addresses: AyaAddresses
      try {
        addresses = await aya.start()
      } catch (error) {
        // Stopped by a signal: stop() closes what started and resolves.
        if (error instanceof StartInterrupted) return
        throw error
      }
      if (stopping) return
      isStarted = true
      for (const listener of addresses.listeners) {
        process.stderr.write(
          `aya: listener ${listener.name} on http://${listener.address}:${listener.port}\n`,
        )
      }
      process.stderr.write(
        `aya: admin on http://${addresses.admin.address}:${addresses.admin.port}\n`,
      )
      if (reloadWhenStarted) reload()
    }
    run().catch(reject)
  })
}

function reportConfigError(error: unknown): number {
  process.stderr.write(`${describe(error)}\n`)
  return 2
}

function describe(error: unknown): string {
  if (error instanceof ConfigError)
    return error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n')
  return error instanceof Error ? error.message : String(error)
}

// `aya ... | head`: once the reader is gone, what aya would still print is dropped. Node ignores
// SIGPIPE, so without this the first write after it (Aya's "draining" on SIGTERM, the bench's
// summary) throws EPIPE and crashes a process that was about to drain or had done its work.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
  })
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // Listeners are closed by now; anything left (a stray keep-alive timer) must not hold the exit.
    if (code !== 0 || process.argv[2] === 'start') setTimeout(() => process.exit(code), 100).unref()
  },
  (error: unknown) => {
    process.stderr.write(
      `aya: ${error instanceof UsageError ? error.message : describe(error)}\n${error instanceof UsageError ? USAGE : ''}`,
    )
    process.exitCode = 2
    // Whatever was left open (a timer, a socket) must not keep a failed start alive.
    setTimeout(() => process.exit(2), 100).unref()
  },
)
