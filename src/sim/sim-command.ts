import { parseArgs } from 'node:util'
import { MAX_TIMER_MS } from '../util/clock.ts'
import { createSimFleet, type SimFleetOptions } from './fleet.ts'
import { ENGINE_PROFILES, MAX_SIM_REPLICAS, parseProfileList } from './profiles.ts'

export interface CommandIo {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
}

export const SIM_USAGE = `Usage: aya sim --replicas N --profile P [--port P] [--speedup X] [--seed S] [--startup-ms D] [--host H] [--metrics-dialect D]
                  [--lora-modules NAME[=PATH]]...

Starts N simulated vLLM-compatible engines on consecutive ports from --port (default 8000;
0 gives each its own ephemeral port), prints one URL per line, then "ready".

  --replicas N      number of engines (required)
  --profile P       ${[...ENGINE_PROFILES.keys()].join(' | ')}, or a counted list
                    such as h100-llama3-8b:2,a100-llama3-8b:2 that adds up to N (required)
  --port P          first port (default 8000)
  --speedup X       run engine time X times faster than real time (default 1)
  --seed S          seed for replica 0; replica i gets S + i (default 1)
  --startup-ms D    engine-time ms each replica answers 503 after start (default 0)
  --host H          address to listen on (default 127.0.0.1)
  --metrics-dialect D  vllm (default) or sglang: the metric names /metrics speaks
  --lora-modules NAME[=PATH]  a LoRA adapter every engine serves as model NAME, as vLLM's
                    flag loads one (the sim reads no PATH); repeat for more
`

class UsageError extends Error {}

function integer(name: string, text: string | undefined, min: number, max: number): number {
  const value = Number(text)
  if (
    text === undefined ||
    text.trim() === '' ||
    !Number.isInteger(value) ||
    value < min ||
    value > max
  ) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${text ?? ''}'`)
  }
  return value
}

function parseSimArgs(argv: readonly string[]): SimFleetOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      replicas: { type: 'string' },
      profile: { type: 'string' },
      port: { type: 'string' },
      speedup: { type: 'string' },
      seed: { type: 'string' },
      'startup-ms': { type: 'string' },
      host: { type: 'string' },
      'metrics-dialect': { type: 'string' },
      'lora-modules': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return 'help'
  if (values.replicas === undefined) throw new UsageError('--replicas is required')
  if (values.profile === undefined) throw new UsageError('--profile is required')
  const replicas = integer('replicas', values.replicas, 1, MAX_SIM_REPLICAS)
  const speedup = values.speedup === undefined ? 1 : Number(values.speedup)
  if (!Number.isFinite(speedup) || speedup <= 0) {
    throw new UsageError(`--speedup must be a positive number, got '${values.speedup}'`)
  }
  try {
    parseProfileList(values.profile, replicas)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const dialect = values['metrics-dialect'] ?? 'vllm'
  if (dialect !== 'vllm' && dialect !== 'sglang') {
    throw new UsageError(`--metrics-dialect must be vllm or sglang, got '${dialect}'`)
  }
  const port = values.port === undefined ? 8000 : integer('port', values.port, 0, 65_535)
  if (port !== 0 && port + replicas - 1 > 65_535) {
    throw new UsageError(`--port ${port} leaves no room for ${replicas} consecutive ports`)
  }
  return {
    replicas,
    profile: values.profile,
    port,
    speedup,
    seed: values.seed === undefined ? 1 : integer('seed', values.seed, 0, 2 ** 32 - 1),
    startupMs:
      values['startup-ms'] === undefined
        ? 0
        : integer('startup-ms', values['startup-ms'], 0, MAX_TIMER_MS),
    host: values.host ?? '127.0.0.1',
    metricsDialect: dialect,
    loras: (values['lora-modules'] ?? []).map(loraName),
  }
}

/** The adapter's name from vLLM's `NAME=PATH` form (or a bare `NAME`). */
function loraName(module: string): string {
  // vLLM also takes a JSON object per adapter; read as a name it would be served as `{"name":...`.
  if (module.trim().startsWith('{')) {
    throw new UsageError(`--lora-modules takes NAME or NAME=PATH, not JSON, got '${module}'`)
  }
  const name = module.split('=', 1)[0]!.trim()
  if (name === '') throw new UsageError(`--lora-modules needs NAME or NAME=PATH, got '${module}'`)
  return name
}

/**
 * `aya sim ...`: starts the fleet and prints its URLs then `ready`. Returns the running fleet's
 * handle, or an exit code: 0 for `--help`, 2 for bad flags, 1 when the fleet cannot start.
 */
export async function runSimCommand(
  argv: readonly string[],
  io: CommandIo,
): Promise<{ close(): Promise<void> } | number> {
  let options: SimFleetOptions | 'help'
  try {
    options = parseSimArgs(argv)
  } catch (error) {
    const isUsage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    if (!isUsage) throw error
    io.stderr.write(`aya sim: ${(error as Error).message}\n\n${SIM_USAGE}`)
    return 2
  }
  if (options === 'help') {
    io.stdout.write(SIM_USAGE)
    return 0
  }
  try {
    const fleet = await createSimFleet(options)
    io.stdout.write(`${fleet.urls.join('\n')}\nready\n`)
    return { close: () => fleet.close() }
  } catch (error) {
    io.stderr.write(`aya sim: cannot start the fleet: ${(error as Error).message}\n`)
    return 1
  }
}
