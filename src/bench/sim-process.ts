import { type NodeChild, notReadyError, spawnNode } from './child-process.ts'

export interface SimProcessOptions {
  readonly ayaBin: string
  readonly replicas: number
  readonly profile: string
  readonly speedup: number
  readonly seed: number
  readonly startTimeoutMs?: number
  /** Ends the process (and so its start) when it aborts. */
  readonly signal?: AbortSignal | undefined
}

export interface SimProcess {
  readonly urls: readonly string[]
  readonly child: NodeChild
  close(): Promise<void>
}

/**
 * Starts a fresh simulated fleet in its own process (`aya sim ... --port 0`), which prints one URL
 * per line and then `ready`.
 */
export async function startSimProcess(options: SimProcessOptions): Promise<SimProcess> {
  const child = spawnNode(
    [
      options.ayaBin,
      'sim',
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
    ],
    { signal: options.signal },
  )
  try {
    await child.waitForLine((line) => line === 'ready', options.startTimeoutMs ?? 30_000)
    const urls = child
      .output()
      .split('\n')
      .filter((line) => /^https?:\/\/\S+$/.test(line))
    if (urls.length !== options.replicas) {
      throw new Error(`aya sim printed ${urls.length} URLs for ${options.replicas} replicas`)
    }
    return { urls, child, close: () => child.close() }
  } catch (error) {
    await child.close()
    throw notReadyError('aya sim', child, error)
  }
}
