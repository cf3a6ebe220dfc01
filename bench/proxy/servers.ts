// Starts each server of the benchmark, pinned, and checks that it answers `200 "ok"` through to
// the upstream before any load is sent.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ayaYaml, haproxyCfg, nginxProxyConf, nginxUpstreamConf } from './configs.ts'
import {
  exec,
  freePort,
  httpGet,
  type Pinned,
  startPinned,
  stop,
  tail,
  waitForHttp,
} from './system.ts'

export const AYA_CLI = 'dist/bin/aya.js'
export const NODE_HTTP_PROXY = 'bench/proxy/node-http-proxy.mjs'

export interface Server {
  readonly name: string
  readonly description: string
  readonly port: number
  readonly proc: Pinned
  /** Where the access log went (Aya only). */
  readonly accessLog?: string
  readonly adminPort?: number
}

/** Thrown when a server does not start or does not proxy; `message` says precisely what failed. */
export class StartError extends Error {}

/**
 * Checks that a server answers as it should before any load; returns what was wrong, or
 * undefined. It polls while the server is still starting.
 */
export type Probe = (server: Server) => Promise<string | undefined>

/** GET / answers `200 "ok"` (the upstream's answer, through the proxy). */
const answersOk: Probe = async (server) => {
  const url = `http://127.0.0.1:${server.port}/`
  const answer = await waitForHttp(url, server.proc)
  if (answer?.status === 200 && answer.body === 'ok') return undefined
  const got = server.proc.exited
    ? `the process (pid ${server.proc.pid}) exited`
    : answer
      ? `GET ${url} answered ${answer.status} ${JSON.stringify(answer.body.slice(0, 200))}`
      : `GET ${url} found nothing listening within 15 s`
  return `expected 200 "ok", but ${got}`
}

/** The server once `probe` passes; otherwise stops it and throws what went wrong, with its logs. */
export async function ready(server: Server, probe: Probe = answersOk): Promise<Server> {
  const wrong = await probe(server)
  if (wrong === undefined) return server
  const logs = [tail(server.proc.stderrPath), tail(server.proc.stdoutPath, 5)]
    .filter((t) => t !== '')
    .join('\n')
  await stop(server.proc)
  throw new StartError(`${server.name}: ${wrong}${logs ? `\n${logs}` : ''}`)
}

function files(dir: string, name: string) {
  return { stdout: join(dir, `${name}.out`), stderr: join(dir, `${name}.err`) }
}

/** nginx serving `conf(port)` (a whole nginx.conf), pinned to `cpu`. */
export async function startNginx(
  dir: string,
  name: string,
  cpu: number,
  description: string,
  conf: (port: number) => string,
  probe?: Probe,
): Promise<Server> {
  const port = await freePort()
  const file = join(dir, `${name}.conf`)
  writeFileSync(file, conf(port))
  const proc = startPinned(
    name,
    cpu,
    'nginx',
    ['-p', dir, '-e', `${dir}/${name}-error.log`, '-c', file],
    files(dir, name),
  )
  return ready({ name, description, port, proc }, probe)
}

/** nginx `return 200 "ok"`: the upstream (CPU 0) or the "direct" target (CPU 1). */
export function startNginxOk(
  dir: string,
  name: string,
  cpu: number,
  description: string,
): Promise<Server> {
  return startNginx(dir, name, cpu, description, (port) => nginxUpstreamConf(dir, name, port))
}

export async function startNginxProxy(
  dir: string,
  cpu: number,
  upstreamPort: number,
  probe?: Probe,
): Promise<Server> {
  const port = await freePort()
  const conf = join(dir, 'nginx-proxy.conf')
  writeFileSync(conf, nginxProxyConf(dir, port, upstreamPort))
  const proc = startPinned(
    'nginx',
    cpu,
    'nginx',
    ['-p', dir, '-e', `${dir}/nginx-proxy-error.log`, '-c', conf],
    files(dir, 'nginx'),
  )
  return ready(
    { name: 'nginx', description: 'nginx proxy, upstream keep-alive (1 worker)', port, proc },
    probe,
  )
}

export async function startHaproxy(
  dir: string,
  cpu: number,
  upstreamPort: number,
): Promise<Server> {
  const port = await freePort()
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(cfg, haproxyCfg(port, upstreamPort))
  const proc = startPinned('haproxy', cpu, 'haproxy', ['-db', '-f', cfg], files(dir, 'haproxy'))
  return ready({ name: 'haproxy', description: 'HAProxy (nbthread 1)', port, proc })
}

export async function startNodeHttp(
  dir: string,
  cpu: number,
  upstreamPort: number,
  probe?: Probe,
): Promise<Server> {
  const port = await freePort()
  const env = { ...process.env, PORT: String(port), UPSTREAM_PORT: String(upstreamPort) }
  const proc = startPinned(
    'node-http',
    cpu,
    process.execPath,
    [NODE_HTTP_PROXY],
    files(dir, 'node-http'),
    env,
  )
  return ready(
    { name: 'node-http', description: 'bare node:http + keep-alive Agent (20 lines)', port, proc },
    probe,
  )
}

export interface AyaStart {
  readonly dir: string
  readonly cpu: number
  readonly upstreamPort: number
  /** A file path, or /dev/null; Aya's access log is JSON lines on stdout. */
  readonly accessLog: string
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
  /** Names the process and its files; `aya` by default. */
  readonly name?: string
  readonly description?: string
  /** The config given Aya's ports; by default bench:proxy's one route to the upstream. */
  readonly config?: (port: number, adminPort: number) => string
  /** What Aya must answer before load; by default GET / → `200 "ok"`. */
  readonly probe?: Probe
}

/** Writes the config, checks it with `aya validate`, then starts `aya start` pinned. */
export async function startAya(options: AyaStart): Promise<Server> {
  const { dir, cpu, upstreamPort, accessLog } = options
  const name = options.name ?? 'aya'
  const port = await freePort()
  const adminPort = await freePort()
  const config = join(dir, `${name}.yaml`)
  const yaml = options.config ?? ((p: number, a: number) => ayaYaml(p, a, upstreamPort))
  writeFileSync(config, yaml(port, adminPort))
  const validate = await exec(process.execPath, [AYA_CLI, 'validate', '--config', config])
  if (validate.code !== 0 || validate.stdout.trim() !== 'ok') {
    throw new StartError(
      `${name}: \`aya validate --config ${config}\` exited ${validate.code}: ${validate.stderr.trim() || validate.stdout.trim()}`,
    )
  }
  const proc = startPinned(
    name,
    cpu,
    process.execPath,
    [...(options.nodeFlags ?? []), AYA_CLI, 'start', '--config', config],
    { stdout: accessLog, stderr: join(dir, `${name}.err`) },
  )
  const server: Server = {
    name,
    description: options.description ?? 'Aya (routing, metrics, access log on)',
    port,
    proc,
    accessLog,
    adminPort,
  }
  const admin = await waitForHttp(`http://127.0.0.1:${adminPort}/ready`, proc)
  if (admin?.status !== 200 && !proc.exited) {
    await stop(proc)
    throw new StartError(
      `${name}: admin GET /ready answered ${admin ? `${admin.status} ${admin.body}` : 'nothing'}\n${tail(proc.stderrPath)}`,
    )
  }
  return ready(server, options.probe)
}

/** Sum of `aya_requests_total` over all label sets, from the admin /metrics endpoint. */
export async function ayaRequestsTotal(adminPort: number): Promise<number | undefined> {
  const answer = await httpGet(`http://127.0.0.1:${adminPort}/metrics`)
  if (answer?.status !== 200) return undefined
  let total = 0
  for (const line of answer.body.split('\n')) {
    if (line.startsWith('aya_requests_total'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}
