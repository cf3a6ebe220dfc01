import { pathToFileURL } from 'node:url'
import { type NodeChild, spawnNode } from './child-process.ts'

export interface SimProcessOptions {
  readonly ayaBin: string
  /** Used only when `aya sim` is not a command of `ayaBin`. */
  readonly simCommandModule: string
  readonly replicas: number
  readonly profile: string
  readonly speedup: number
  readonly seed: number
  readonly startTimeoutMs?: number
}

export interface SimProcess {
  readonly urls: readonly string[]
  readonly child: NodeChild
  close(): Promise<void>
}

function simArgs(options: SimProcessOptions): string[] {
  return [
    '--replicas',
    String(options.replicas),
    '--profile',
    options.profile,
    '--port',
    '0',
    '--speedup',
    String(options.speedup),
    '--seed',
    String(options.seed),
  ]
}

async function readUrls(child: NodeChild, timeoutMs: number): Promise<string[]> {
  await child.waitForLine((line) => line === 'ready', timeoutMs)
  return child
    .output()
    .split('\n')
    .filter((line) => /^https?:\/\/\S+$/.test(line))
}

/**
 * Starts a fresh simulated fleet in its own process (`aya sim ... --port 0`), which prints one URL
 * per line and then `ready`. Falls back to the built `runSimCommand` when the CLI predates `sim`.
 */
export async function startSimProcess(options: SimProcessOptions): Promise<SimProcess> {
  const timeoutMs = options.startTimeoutMs ?? 30_000
  let child = spawnNode([options.ayaBin, 'sim', ...simArgs(options)])
  let urls: string[]
  try {
    urls = await readUrls(child, timeoutMs)
  } catch (error) {
    await child.close()
    if (!/unknown command/.test(child.output())) throw error
    const url = pathToFileURL(options.simCommandModule).href
    const script = `const { runSimCommand } = await import(${JSON.stringify(url)})
const r = await runSimCommand(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr })
if (typeof r === 'number') process.exitCode = r`
    child = spawnNode(['--input-type=module', '-e', script, ...simArgs(options)])
    urls = await readUrls(child, timeoutMs)
  }
  if (urls.length !== options.replicas) {
    await child.close()
    throw new Error(`aya sim printed ${urls.length} URLs for ${options.replicas} replicas`)
  }
  return { urls, child, close: () => child.close() }
}
