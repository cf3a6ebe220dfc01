// The `@portkey-ai/gateway` npm package: installed at a pinned version into a cache folder on
// first use (it is no dependency of Aya's), and started pinned like every other target.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Probe, ready, type Server } from '../proxy/servers.ts'
import { freePort, startPinned } from '../proxy/system.ts'

export const PORTKEY_VERSION = '1.15.2'

/**
 * `@hono/node-server` after 1.14.2 gives Portkey's responses immutable headers, and every
 * streamed completion then fails with `TypeError: immutable` (Portkey-AI/gateway#1389, still
 * open); npm resolves Portkey's `^1.3.3` to such a version. 1.13.5 is the one Portkey's own
 * repository builds with (its `patches/@hono+node-server+1.13.5.patch`).
 */
export const HONO_NODE_SERVER_VERSION = '1.13.5'

export const DEFAULT_PORTKEY_DIR = `bench-out/portkey-gateway-${PORTKEY_VERSION}`

function versionAt(packageJson: string): string | undefined {
  if (!existsSync(packageJson)) return undefined
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: string }).version
}

export interface PortkeyInstall {
  /** The server's entry point, `build/start-server.js`. */
  readonly entry: string
  readonly version: string
  readonly honoNodeServer: string
}

/** What is installed in `dir`, when it is the pinned versions. */
function installed(dir: string): PortkeyInstall | undefined {
  const gateway = join(dir, 'node_modules/@portkey-ai/gateway')
  const nested = join(gateway, 'node_modules/@hono/node-server/package.json')
  const hono = versionAt(
    existsSync(nested) ? nested : join(dir, 'node_modules/@hono/node-server/package.json'),
  )
  const version = versionAt(join(gateway, 'package.json'))
  if (version !== PORTKEY_VERSION || hono !== HONO_NODE_SERVER_VERSION) return undefined
  return { entry: join(gateway, 'build/start-server.js'), version, honoNodeServer: hono }
}

/** Installs the pinned Portkey into `dir` with npm unless it is there already. */
export function ensurePortkey(dir: string, log: (line: string) => void): PortkeyInstall {
  const root = resolve(dir)
  const found = installed(root)
  if (found) return found
  log(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${root} with npm`)
  mkdirSync(root, { recursive: true })
  const manifest = {
    private: true,
    dependencies: { '@portkey-ai/gateway': PORTKEY_VERSION },
    overrides: { '@hono/node-server': HONO_NODE_SERVER_VERSION },
  }
  writeFileSync(join(root, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  // Its postinstall runs patch-package on patches the published package does not ship.
  execFileSync(
    'npm',
    ['install', '--prefix', root, '--no-audit', '--no-fund', '--ignore-scripts'],
    {
      stdio: ['ignore', 2, 2],
      timeout: 300_000,
    },
  )
  const now = installed(root)
  if (!now) throw new Error(`npm did not install the pinned Portkey into ${root}`)
  return now
}

/** `node start-server.js --port=N --headless`, pinned; ready once `probe` passes. */
export async function startPortkey(
  dir: string,
  cpu: number,
  install: PortkeyInstall,
  probe: Probe,
): Promise<Server> {
  const port = await freePort()
  const proc = startPinned(
    'portkey',
    cpu,
    process.execPath,
    [install.entry, `--port=${port}`, '--headless'],
    { stdout: join(dir, 'portkey.out'), stderr: join(dir, 'portkey.err') },
  )
  const description = `@portkey-ai/gateway ${install.version} (Node, headless)`
  return ready({ name: 'portkey', description, port, proc }, probe)
}
