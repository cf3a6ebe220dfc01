// Starts the targets of bench:gateway, each checked against every workload before any load.
import { join } from 'node:path'
import { PROXY_CPU } from '../proxy/measure.ts'
import {
  type Server,
  StartError,
  startAya,
  startNginx,
  startNginxProxy,
  startNodeHttp,
} from '../proxy/servers.ts'
import { MODEL } from './answers.ts'
import { answersEveryRequest } from './answers-probe.ts'
import { type AyaPolicy, ayaModelsYaml, llmUpstreamConf } from './configs.ts'
import { type PortkeyInstall, startPortkey } from './portkey.ts'
import { headersFor, type TargetName } from './targets.ts'
import type { Workload } from './workloads.ts'

export interface Started {
  readonly name: TargetName
  readonly server: Server
}

/**
 * Starts each target pinned to CPU 1; it counts as started once it answered every workload as
 * the upstream does. One that does not is reported in `failures` and left out.
 */
export async function startTargets(
  dir: string,
  targets: readonly TargetName[],
  workloads: readonly Workload[],
  upstream: Server,
  portkey: PortkeyInstall | undefined,
  failures: string[],
  log: (line: string) => void,
): Promise<Started[]> {
  const probeFor = (target: TargetName) =>
    answersEveryRequest(
      workloads.map((w) => ({ workload: w, headers: headersFor(target, w, upstream.port) })),
    )
  const aya = (name: TargetName, policy: AyaPolicy) =>
    startAya({
      dir,
      cpu: PROXY_CPU,
      upstreamPort: upstream.port,
      accessLog: join(dir, `${name}-access.log`),
      name,
      description: `Aya models gateway, policy ${policy} (metrics, access log to a file)`,
      config: (port, adminPort) => ayaModelsYaml(port, adminPort, upstream.port, policy, MODEL),
      probe: probeFor(name),
    })
  const starters: Record<TargetName, () => Promise<Server>> = {
    direct: () =>
      startNginx(
        dir,
        'direct',
        PROXY_CPU,
        'the upstream nginx alone, no hop',
        (port) => llmUpstreamConf(dir, 'direct', port),
        probeFor('direct'),
      ),
    nginx: () => startNginxProxy(dir, PROXY_CPU, upstream.port, probeFor('nginx')),
    'node-http': () => startNodeHttp(dir, PROXY_CPU, upstream.port, probeFor('node-http')),
    portkey: () => {
      if (!portkey) throw new Error('portkey is not installed')
      return startPortkey(dir, PROXY_CPU, portkey, probeFor('portkey'))
    },
    aya: () => aya('aya', 'aya'),
    'aya-least-request': () => aya('aya-least-request', 'least-request'),
  }
  const started: Started[] = []
  for (const name of targets) {
    try {
      const server = await starters[name]()
      started.push({ name, server })
      log(`${name}: pid ${server.proc.pid} on 127.0.0.1:${server.port}, every workload answered`)
    } catch (error) {
      if (!(error instanceof StartError)) throw error
      failures.push(error.message)
      log(`FAILED to start: ${error.message}`)
    }
  }
  return started
}
