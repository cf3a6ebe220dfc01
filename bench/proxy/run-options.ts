// The flags every interleaved-rounds benchmark takes (bench:proxy, bench:gateway): how long and how
// often to measure, and how to treat other load on the machine.
import { type ParseArgsConfig, parseArgs } from 'node:util'

export interface RunOptions {
  readonly rounds: number
  readonly durationS: number
  readonly c1Rounds: number
  readonly c1DurationS: number
  readonly warmupS: number
  readonly connections: number
  readonly out: string
  readonly keepTmp: boolean
  /** A run is redone when something else used more than this share of the proxy CPU. */
  readonly maxOther: number
  readonly retries: number
  /** Total seconds the run may spend waiting for other load on the machine to stop. */
  readonly maxWaitS: number
}

export const RUN_USAGE = `  --rounds N           c=50 rounds (default 5)
  --duration-s S       seconds per c=50 wrk run (default 5)
  --c1-rounds N        c=1 latency rounds (default 3)
  --c1-duration-s S    seconds per c=1 wrk run (default 3)
  --warmup-s S         c=50 warm-up per target before the rounds (default 3)
  --connections N      wrk connections for the throughput rounds (default 50)
  --keep-tmp           keep the temp dir (configs, server logs, Aya's access log)
  --max-other F        redo a run when other processes used more than this share of CPU 1
                       (default 0.1); before each run, wait for the machine to be <10% busy
  --retries N          redos per run at most (default 3); the last try is kept, flagged
  --max-wait-s S       total time to wait for a quiet machine (default 300)
`

/** parseArgs options for the flags above (and --out, --help). */
export function runOptionSpec(out: string) {
  return {
    rounds: { type: 'string', default: '5' },
    'duration-s': { type: 'string', default: '5' },
    'c1-rounds': { type: 'string', default: '3' },
    'c1-duration-s': { type: 'string', default: '3' },
    'warmup-s': { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    out: { type: 'string', default: out },
    'keep-tmp': { type: 'boolean', default: false },
    'max-other': { type: 'string', default: '0.1' },
    retries: { type: 'string', default: '3' },
    'max-wait-s': { type: 'string', default: '300' },
    help: { type: 'boolean', short: 'h', default: false },
  } as const satisfies ParseArgsConfig['options']
}

type Flags = NonNullable<ParseArgsConfig['options']>

/** `argv` parsed with the shared flags and `extra`; on --help, prints `usage` and exits. */
export function parseRunArgs<const T extends Flags>(
  argv: string[],
  usage: string,
  out: string,
  extra: T,
) {
  const options = { ...runOptionSpec(out), ...extra }
  const { values } = parseArgs({ args: argv, strict: true, options })
  if ('help' in values && values.help === true) {
    process.stdout.write(usage)
    process.exit(0)
  }
  return values
}

type RunValues = {
  readonly [K in keyof ReturnType<typeof runOptionSpec>]: ReturnType<
    typeof runOptionSpec
  >[K]['type'] extends 'boolean'
    ? boolean
    : string
}

/** A flag's integer value, at least `min`. */
export function intOption(flag: string, text: string, min: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: expected an integer ≥ ${min}`)
  return n
}

export function runOptions(values: RunValues): RunOptions {
  const maxOther = Number(values['max-other'])
  if (!(maxOther >= 0 && maxOther <= 1)) throw new Error('--max-other: expected a share in [0, 1]')
  return {
    rounds: intOption('rounds', values.rounds, 1),
    durationS: intOption('duration-s', values['duration-s'], 1),
    c1Rounds: intOption('c1-rounds', values['c1-rounds'], 0),
    c1DurationS: intOption('c1-duration-s', values['c1-duration-s'], 1),
    warmupS: intOption('warmup-s', values['warmup-s'], 0),
    connections: intOption('connections', values.connections, 1),
    out: values.out,
    keepTmp: values['keep-tmp'],
    maxOther,
    retries: intOption('retries', values.retries, 0),
    maxWaitS: intOption('max-wait-s', values['max-wait-s'], 0),
  }
}

/** A comma-separated subset of `all`, kept in `all`'s order whatever order was given. */
export function subset<T extends string>(flag: string, text: string, all: readonly T[]): T[] {
  const given = text.split(',').map((t) => t.trim())
  for (const t of given) {
    if (!(all as readonly string[]).includes(t)) throw new Error(`--${flag}: unknown "${t}"`)
  }
  return all.filter((t) => given.includes(t))
}

/** Seconds a run should take, without redos or waits: each cell's warm-up, rounds and c=1 rounds. */
export function estimateRunS(options: RunOptions, cells: number): number {
  return (
    cells *
    (options.warmupS +
      options.rounds * (options.durationS + 0.5) +
      options.c1Rounds * (options.c1DurationS + 0.5))
  )
}
