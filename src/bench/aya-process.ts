import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { stringify } from 'yaml'
import {
  AYA_CONFIG_VARIANTS,
  type AyaConfigInput,
  type AyaConfigVariant,
  ayaConfigFor,
} from './aya-config.ts'
import { type NodeChild, notReadyError, spawnNode } from './child-process.ts'

export interface AyaProcess {
  /** The public listener, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  readonly child: NodeChild
  close(): Promise<void>
}

const LISTENER_LINE = /^aya: listener public on (http:\/\/\S+:\d+)$/

/**
 * `aya validate --config FILE`: undefined when it passes, else its output. `signal` ends the
 * check; it resolves only once the process is gone, so none outlives the run that started it.
 */
async function validates(
  ayaBin: string,
  configPath: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const child = spawn(process.execPath, [ayaBin, 'validate', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    signal,
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', resolve)
    // An abort emits 'error' too, then 'exit' once the process is gone; a spawn that failed
    // emits only 'error'.
    child.once('error', (error) => {
      output += error.message
      if (child.pid === undefined) resolve(null)
    })
  })
  signal?.throwIfAborted()
  return code === 0 ? undefined : output.trim()
}

/**
 * The first config variant this build of Aya accepts, checked once with `aya validate` on a
 * config with placeholder endpoints, and why the better ones were refused. `signal` stops the
 * check (its `aya validate` with it).
 */
export async function probeAyaConfigVariant(
  ayaBin: string,
  configPath: string,
  input: Omit<AyaConfigInput, 'urls'>,
  signal?: AbortSignal,
): Promise<{ variant: AyaConfigVariant; refused: string[] }> {
  const refused: string[] = []
  const probe = { ...input, urls: ['http://127.0.0.1:9'] }
  for (const variant of AYA_CONFIG_VARIANTS) {
    await writeFile(configPath, stringify(ayaConfigFor(probe, variant)))
    const problem = await validates(ayaBin, configPath, signal)
    if (problem === undefined) return { variant, refused }
    refused.push(`${variant}: ${problem}`)
  }
  throw new Error(`Aya accepts no bench config:\n${refused.join('\n')}`)
}

export async function writeAyaConfig(
  configPath: string,
  input: AyaConfigInput,
  variant: AyaConfigVariant,
): Promise<void> {
  await writeFile(configPath, stringify(ayaConfigFor(input, variant)))
}

/**
 * Starts `aya start --config FILE` and reads the public listener's port from its stderr; `signal`
 * ends the process (and so its start) when it aborts.
 */
export async function startAyaProcess(
  ayaBin: string,
  configPath: string,
  signal?: AbortSignal,
): Promise<AyaProcess> {
  const child = spawnNode([ayaBin, 'start', '--config', configPath], { signal })
  try {
    const line = await child.waitForLine((l) => LISTENER_LINE.test(l), 30_000)
    return { url: LISTENER_LINE.exec(line)![1]!, child, close: () => child.close() }
  } catch (error) {
    await child.close()
    throw notReadyError('aya start', child, error)
  }
}
