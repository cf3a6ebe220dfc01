import { parseArgs } from 'node:util'
import { findPicker, pickerNames } from '../balancer/picker-registry.ts'
import { type AdmissionConfig, admissionSchema } from '../config/schema.ts'
import { ENGINE_PROFILES, MAX_SIM_REPLICAS, parseProfileList } from '../sim/profiles.ts'
import { MAX_TIMER_MS } from '../util/clock.ts'
import { isRecord } from '../util/is-record.ts'
import { parseWindow, type TraceWindow } from './trace-timing.ts'

export interface BenchOptions {
  readonly command: 'run' | 'sweep'
  readonly trace: string
  readonly policies: readonly string[]
  readonly replicas: number
  /** Router replicas in front of the fleet (`--routers`; HTTP mode starts one Aya process each). */
  readonly routers: number
  /** The routers share one state store, and so their prefix announcements (`--shared-state`). */
  readonly sharedState: boolean
  readonly profile: string
  readonly mode: 'http' | 'des'
  readonly speedup: number
  readonly window: TraceWindow | undefined
  readonly rateScale: number
  readonly rate: number | undefined
  readonly lengthScale: number
  readonly spreadBuckets: boolean
  readonly sloTtftMs: number
  readonly sloItlMs: number
  readonly seed: number
  readonly out: string
  readonly maxTokens: number | undefined
  readonly timeoutMs: number
  readonly scrapeIntervalMs: number
  readonly sampleIntervalMs: number
  readonly limit: number | undefined
  readonly showProgress: boolean
  readonly sweep:
    | { readonly min: number; readonly max: number; readonly precision: number }
    | undefined
  readonly confirmHttp: boolean
  /**
   * `--policy-options`: per policy, its `policyOptions` as an upstream would configure them
   * (unparsed; each was checked against the policy's schema). Policies not named get `{}`.
   */
  readonly policyOptions: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /**
   * `--admission`: an `upstreams.<n>.admission` block (late binding on the one admission queue)
   * for every policy's upstream, parsed with defaults; its durations are trace time.
   */
  readonly admission: AdmissionConfig | undefined
}

export const BENCH_USAGE = `Usage:
  aya bench --trace FILE --policies P1,P2,... --replicas N --profile P --out DIR [options]
  aya bench sweep ... --rate-scale-min A --rate-scale-max B [--precision 5%] [--confirm-http]

Replays a real trace against a simulated fleet, once per policy, and writes DIR/report.json,
DIR/report.md, DIR/report.html and DIR/series.json. See docs/bench.md.

  --trace FILE            Mooncake JSONL, Azure LLM CSV or ShareGPT lengths CSV (required)
  --policies LIST         comma-separated upstream policies (required): ${pickerNames().join(', ')}
  --replicas N            simulated engines, 1 to 1024 (required)
  --routers N             N Aya replicas (1-64) in front of the engines, each with its own
                          accounting and policy state, taking arriving requests in turn
                          (default 1; HTTP mode starts N Aya processes)
  --shared-state          the routers share one state store, as with state: { store: redis },
                          and so the prefix index (needs --routers; HTTP mode starts a
                          redis-server)
  --profile P             ${[...ENGINE_PROFILES.keys()].join(' | ')}, or a counted list (required)
  --out DIR               where the reports go (required)
  --mode http|des         real Aya and simulator processes, or virtual time (default: http;
                          sweep: des)
  --speedup X             HTTP mode: run the simulator X times faster than real time (default 1)
  --window START:END      keep requests START..END seconds after the first request
  --rate-scale R          multiply the arrival rate by R (default 1)
  --rate Q                Poisson arrivals at Q req/s (ShareGPT lengths; required there)
  --length-scale F        scale input/output lengths and the Mooncake block size (default 1)
  --spread-buckets        spread requests sharing a timestamp over the gap to the next one
  --slo-ttft-ms T         TTFT SLO for goodput, knees and validity (default 2000)
  --slo-itl-ms I          mean-ITL SLO for goodput (default 25)
  --seed S                seed for prompt text, arrivals, engines and policies (default 1)
  --max-tokens N          the max_tokens cap sent with every request (default: per trace)
  --timeout-ms T          client timeout per request, trace ms (default 300000)
  --scrape-interval-ms T  how often the router reads engine metrics, trace ms (default 50)
  --sample-interval-ms T  load sampling for the charts, trace ms (default 1000)
  --limit N               replay only the first N requests of the window
  --policy-options JSON   per-policy policyOptions, e.g. '{"aya":{"affinityCredit":2}}'
                          (checked against each policy's schema; used in both modes)
  --admission JSON        late binding for every policy: an upstreams.<n>.admission block,
                          e.g. '{}' for the defaults or '{"ttftSloMs":1000}' (trace ms; both modes)
  --no-progress           no progress bar
  --rate-scale-min A      sweep: lowest rate scale tried (required for sweep)
  --rate-scale-max B      sweep: highest rate scale tried (required for sweep)
  --precision P           sweep: knee precision, a fraction or a percentage (default 5%)
  --confirm-http          sweep: run each policy once over HTTP at its DES knee
`

export class UsageError extends Error {}

/** `Number(text)`, but NaN for a blank text, which Number reads as 0 (an unset shell variable). */
function numberOf(text: string): number {
  return text.trim() === '' ? Number.NaN : Number(text)
}

function positive(name: string, text: string | undefined, fallback?: number): number {
  if (text === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`)
    return fallback
  }
  const value = numberOf(text)
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${name} must be a positive number, got '${text}'`)
  }
  return value
}

/** Router replicas a run may start: far past any HA deployment, and each one is a process. */
const MAX_ROUTERS = 64

function positiveInt(name: string, text: string | undefined, fallback?: number): number {
  const value = positive(name, text, fallback)
  if (!Number.isInteger(value)) throw new UsageError(`--${name} must be an integer, got '${text}'`)
  return value
}

function precisionOf(text: string | undefined): number {
  if (text === undefined) return 0.05
  const isPercent = text.trim().endsWith('%')
  const value = Number(isPercent ? text.trim().slice(0, -1) : text)
  const fraction = isPercent ? value / 100 : value
  if (!Number.isFinite(fraction) || fraction <= 0 || fraction >= 1) {
    throw new UsageError(`--precision must be in (0, 1) or (0 %, 100 %), got '${text}'`)
  }
  return fraction
}

/** Parses `aya bench` arguments; throws UsageError for anything wrong. 'help' for --help. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | 'help' {
  const isSweep = argv[0] === 'sweep'
  const { values, positionals } = parseArgs({
    args: [...(isSweep ? argv.slice(1) : argv)],
    strict: true,
    allowPositionals: true,
    options: {
      trace: { type: 'string' },
      policies: { type: 'string' },
      replicas: { type: 'string' },
      routers: { type: 'string' },
      'shared-state': { type: 'boolean' },
      profile: { type: 'string' },
      out: { type: 'string' },
      mode: { type: 'string' },
      speedup: { type: 'string' },
      window: { type: 'string' },
      'rate-scale': { type: 'string' },
      rate: { type: 'string' },
      'length-scale': { type: 'string' },
      'spread-buckets': { type: 'boolean' },
      'slo-ttft-ms': { type: 'string' },
      'slo-itl-ms': { type: 'string' },
      seed: { type: 'string' },
      'max-tokens': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'scrape-interval-ms': { type: 'string' },
      'sample-interval-ms': { type: 'string' },
      limit: { type: 'string' },
      'no-progress': { type: 'boolean' },
      'policy-options': { type: 'string' },
      admission: { type: 'string' },
      'rate-scale-min': { type: 'string' },
      'rate-scale-max': { type: 'string' },
      precision: { type: 'string' },
      'confirm-http': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return 'help'
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`)
  if (values.trace === undefined) throw new UsageError('--trace is required')
  if (values.out === undefined) throw new UsageError('--out is required')
  if (values.profile === undefined) throw new UsageError('--profile is required')
  const policies = (values.policies ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  if (policies.length === 0) throw new UsageError('--policies is required')
  for (const policy of policies) {
    if (!findPicker(policy)) {
      throw new UsageError(
        `--policies: unknown policy '${policy}' (known: ${pickerNames().join(', ')})`,
      )
    }
  }
  const repeated = policies.find((p, i) => policies.indexOf(p) !== i)
  if (repeated !== undefined) throw new UsageError(`--policies repeats '${repeated}'`)
  const replicas = positiveInt('replicas', values.replicas)
  // HTTP mode's `aya sim` refuses more, but only after the trace is read; DES mode ran out of
  // memory building them.
  if (replicas > MAX_SIM_REPLICAS) {
    throw new UsageError(
      `--replicas must be an integer from 1 to ${MAX_SIM_REPLICAS}, got '${values.replicas}'`,
    )
  }
  try {
    parseProfileList(values.profile, replicas)
  } catch (error) {
    // The simulator's messages ('profile is empty') name neither the flag nor what it was given.
    throw new UsageError(`--profile '${values.profile}': ${(error as Error).message}`)
  }
  const mode = values.mode ?? (isSweep ? 'des' : 'http')
  if (mode !== 'http' && mode !== 'des') {
    throw new UsageError(`--mode must be http or des, got '${mode}'`)
  }
  const routers = values.routers === undefined ? 1 : positiveInt('routers', values.routers)
  // In HTTP mode each router is an Aya process: a mistyped 1000 would start a thousand.
  if (routers > MAX_ROUTERS) {
    throw new UsageError(
      `--routers must be an integer from 1 to ${MAX_ROUTERS}, got '${values.routers}'`,
    )
  }
  const sharedState = values['shared-state'] === true
  if (sharedState && routers < 2) throw new UsageError('--shared-state needs --routers 2 or more')
  let window: TraceWindow | undefined
  if (values.window !== undefined) {
    window = parseWindow(values.window)
    if (!window) {
      throw new UsageError(
        `--window must be START:END seconds with 0 <= START < END, got '${values.window}'`,
      )
    }
  }
  const seed = values.seed === undefined ? 1 : numberOf(values.seed)
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) {
    throw new UsageError(`--seed must be an integer from 0 to 4294967295, got '${values.seed}'`)
  }
  let sweep: BenchOptions['sweep']
  if (isSweep) {
    const min = positive('rate-scale-min', values['rate-scale-min'])
    const max = positive('rate-scale-max', values['rate-scale-max'])
    if (max < min) throw new UsageError('--rate-scale-max must be at least --rate-scale-min')
    sweep = { min, max, precision: precisionOf(values.precision) }
  } else {
    for (const flag of ['rate-scale-min', 'rate-scale-max', 'precision', 'confirm-http'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} belongs to 'aya bench sweep'`)
    }
  }
  const speedup = positive('speedup', values.speedup, 1)
  const timeoutMs = positive('timeout-ms', values['timeout-ms'], 300_000)
  const scrapeIntervalMs = positive('scrape-interval-ms', values['scrape-interval-ms'], 50)
  const sampleIntervalMs = positive('sample-interval-ms', values['sample-interval-ms'], 1000)
  if (mode === 'http' || values['confirm-http'] === true) {
    // HTTP mode turns these into real timers (Aya's timeouts and scrape interval, the client's
    // abort, the load sampler) of `value / speedup` ms. Node fires a longer timer after 1 ms, and
    // Aya's config refuses it, so the run would fail every request or stop after starting.
    for (const [flag, traceMs] of [
      ['timeout-ms', timeoutMs],
      ['scrape-interval-ms', scrapeIntervalMs],
      ['sample-interval-ms', sampleIntervalMs],
    ] as const) {
      if (traceMs / speedup > MAX_TIMER_MS) {
        throw new UsageError(
          `--${flag} ${traceMs} at --speedup ${speedup} is ${traceMs / speedup} real ms, past the ${MAX_TIMER_MS} ms a timer can wait (HTTP mode)`,
        )
      }
    }
  }
  return {
    command: isSweep ? 'sweep' : 'run',
    trace: values.trace,
    policies,
    replicas,
    routers,
    sharedState,
    profile: values.profile,
    mode,
    speedup,
    window,
    rateScale: positive('rate-scale', values['rate-scale'], 1),
    rate: values.rate === undefined ? undefined : positive('rate', values.rate),
    lengthScale: positive('length-scale', values['length-scale'], 1),
    spreadBuckets: values['spread-buckets'] === true,
    sloTtftMs: positive('slo-ttft-ms', values['slo-ttft-ms'], 2000),
    sloItlMs: positive('slo-itl-ms', values['slo-itl-ms'], 25),
    seed,
    out: values.out,
    maxTokens:
      values['max-tokens'] === undefined
        ? undefined
        : positiveInt('max-tokens', values['max-tokens']),
    timeoutMs,
    scrapeIntervalMs,
    sampleIntervalMs,
    limit: values.limit === undefined ? undefined : positiveInt('limit', values.limit),
    showProgress: values['no-progress'] !== true,
    sweep,
    confirmHttp: values['confirm-http'] === true,
    policyOptions: parsePolicyOptions(values['policy-options'], policies),
    admission: parseAdmission(values.admission),
  }
}

/** `--admission JSON`: checked by the config's own admission schema, defaults filled in. */
export function parseAdmission(text: string | undefined): AdmissionConfig | undefined {
  if (text === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--admission is not JSON: ${(error as Error).message}`)
  }
  const result = admissionSchema.safeParse(parsed)
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${['admission', ...issue.path].join('.')}: ${issue.message}`)
      .join('; ')
    throw new UsageError(`--admission: ${problems}`)
  }
  return result.data
}

/**
 * `--policy-options JSON`: an object keyed by policy name, each value that policy's
 * `policyOptions`. Every key must be one of `--policies`, and every value must pass the policy's
 * own options schema (the same check `aya validate` makes on a config file).
 */
export function parsePolicyOptions(
  text: string | undefined,
  policies: readonly string[],
): Readonly<Record<string, Readonly<Record<string, unknown>>>> {
  if (text === undefined) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--policy-options is not JSON: ${(error as Error).message}`)
  }
  if (!isRecord(parsed)) {
    throw new UsageError('--policy-options must be a JSON object keyed by policy name')
  }
  const out: Record<string, Readonly<Record<string, unknown>>> = {}
  for (const [policy, options] of Object.entries(parsed)) {
    if (!policies.includes(policy)) {
      throw new UsageError(`--policy-options names '${policy}', which is not in --policies`)
    }
    if (!isRecord(options)) {
      throw new UsageError(`--policy-options.${policy} must be an object`)
    }
    const result = findPicker(policy)!.optionsSchema.safeParse(options)
    if (!result.success) {
      const problems = result.error.issues
        .map((issue) => `${[policy, ...issue.path].join('.')}: ${issue.message}`)
        .join('; ')
      throw new UsageError(`--policy-options: ${problems}`)
    }
    out[policy] = options
  }
  return out
}
