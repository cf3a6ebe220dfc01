import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The built CLI, as `npm start` and `npx aya` run it. `npm test` builds before testing. */
export const AYA_BIN = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'aya.js')

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [AYA_BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

/** Starts `aya ARGS` and resolves once stderr contains `readyText`. */
export async function spawnCli(
  args: readonly string[],
  readyText: string | RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [AYA_BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const ready = new Promise<void>((resolve, reject) => {
    const check = (chunk: Buffer) => {
      output += chunk
      if (typeof readyText === 'string' ? output.includes(readyText) : readyText.test(output))
        resolve()
    }
    child.stdout!.on('data', check)
    child.stderr!.on('data', check)
    child.once('exit', (code) =>
      reject(new Error(`aya exited with ${code} before ready:\n${output}`)),
    )
  })
  await ready
  return { child, output: () => output }
}

export async function writeTempFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aya-test-'))
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

/** The start of a YAML config for a test: one public listener and the admin, both on port 0. */
export const LOCAL_LISTENERS_YAML = `listeners:
  - name: public
    address: 127.0.0.1
    port: 0
admin: { address: 127.0.0.1, port: 0 }
`

/**
 * A whole YAML config for a test: the local listeners, `extra` (top-level keys), and one route,
 * `/` to the upstream `api` at `upstreamUrl`.
 */
export function oneUpstreamYaml(upstreamUrl: string, extra = ''): string {
  return `${LOCAL_LISTENERS_YAML}${extra}routes:
  - match: { pathPrefix: / }
    upstream: api
upstreams:
  api:
    endpoints:
      - url: ${upstreamUrl}
`
}
