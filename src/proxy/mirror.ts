import type { Readable } from 'node:stream'
import { PassThrough } from 'node:stream'
import type { PoolRegistry } from '../upstream/pool-registry.ts'
import type { Clock } from '../util/clock.ts'
import { splitHostPort } from '../util/split-host-port.ts'
import { forward } from './forward.ts'
import type { UpstreamRuntime } from './proxy-runtime.ts'

export interface MirrorRequest {
  readonly shadow: UpstreamRuntime
  readonly path: string
  readonly method: string
  readonly headers: Readonly<Record<string, string | string[]>>
  readonly body: Readable | null
}

/**
 * Sends a copy of a request to a shadow group, fire and forget: its response is read and dropped,
 * its failures are ignored, and it never slows the primary. Returns the body the primary should
 * read (a tee of the original when there is one). Host's name gets a `-shadow` suffix, as in Envoy,
 * so the shadow can tell mirrored traffic apart.
 */
export function mirrorRequest(
  request: MirrorRequest,
  deps: { readonly pools: PoolRegistry; readonly clock: Clock },
): Readable | null {
  const endpoint = request.shadow.group.select({ attempt: 0 })
  if (!endpoint) return request.body
  const timeouts = request.shadow.timeouts
  const pool = deps.pools.get(endpoint.spec.origin, {
    connectTimeoutMs: timeouts.connectMs,
    maxConnections: request.shadow.maxConnections,
    purpose: 'shadow',
  })
  // A shadow that does not keep up loses copies rather than queue them: each waiting copy holds
  // up to 1 MiB of body, and Envoy's circuit breakers bound its mirrors the same way. Counted on
  // the mirror's own pool, so the primary traffic the same endpoint may serve is not counted.
  if (pool.stats.size >= request.shadow.maxConnections) return request.body
  const headers = { ...request.headers }
  if (typeof headers.host === 'string') headers.host = shadowHost(headers.host)
  let primaryBody: Readable | null = request.body
  let shadowBody: PassThrough | null = null
  if (request.body) {
    const primary = new PassThrough()
    shadowBody = new PassThrough()
    const shadow = shadowBody
    request.body.on('data', (chunk: Buffer) => {
      if (!primary.write(chunk)) {
        request.body!.pause()
        primary.once('drain', () => request.body!.resume())
      }
      // The shadow never applies back-pressure: when it lags, it is dropped.
      if (!shadow.destroyed && shadow.writableLength < 1024 * 1024) shadow.write(chunk)
      else shadow.destroy()
    })
    request.body.on('end', () => {
      primary.end()
      if (!shadow.destroyed) shadow.end()
    })
    request.body.on('error', (error) => {
      primary.destroy(error)
      shadow.destroy()
    })
    primaryBody = primary
  }
  const lease = endpoint.begin()
  const startMs = deps.clock.now()
  const handle = forward(
    pool,
    {
      path: request.path,
      method: request.method,
      headers,
      body: shadowBody,
      firstByteTimeoutMs: timeouts.firstByteMs,
      connectionWaitMs: timeouts.connectMs + timeouts.firstByteMs,
      idleTimeoutMs: timeouts.idleMs,
    },
    { start: () => true, data: () => true, onDrain: () => {}, end: () => {} },
    deps,
  )
  // Fire and forget by design: the outcome only feeds the shadow endpoint's own accounting.
  void handle.done.then((result) =>
    lease.end({ ok: result.error === undefined, latencyMs: deps.clock.now() - startMs }),
  )
  return primaryBody
}

/**
 * `-shadow` goes on the host's name, before any port: `a.com:8080-shadow` has a port that is not a
 * number, which servers that parse it (Tomcat) refuse, as Envoy learned (envoyproxy/envoy#2595).
 * Host was checked against HOST_NAME, so a `:` outside an IPv6 literal's brackets starts the port.
 */
function shadowHost(host: string): string {
  const [name, port] = splitHostPort(host)
  return port === '' ? `${name}-shadow` : `${name}-shadow:${port}`
}
