import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { RequestHandler } from '../util/http-server.ts'
import { pathOf } from '../util/request-target.ts'

/**
 * Where the instance is in its life, as `/ready` reports it: `ready` once the config is loaded
 * and every listener is accepting, `draining` from the shutdown signal until the admin closes.
 */
export type ReadinessPhase = 'starting' | 'ready' | 'draining'

export interface AdminDeps {
  readonly registry: Registry
  readonly phase: () => ReadinessPhase
}

/** Every admin path is read-only: a 405 names these (RFC 9110 §15.5.6 requires `Allow`). */
const ALLOWED_METHODS = 'GET, HEAD'

/**
 * The admin listener's request handler: Aya's own health and metrics. Health endpoints need no
 * token so that orchestrators can probe them.
 */
export function createAdminHandler(deps: AdminDeps): RequestHandler {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req.url ?? '/')
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return json(res, 405, { error: 'method not allowed' }, { allow: ALLOWED_METHODS })
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' })
      case '/ready': {
        const status = deps.phase()
        return json(res, status === 'ready' ? 200 : 503, { status })
      }
      case '/metrics':
        deps.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': deps.registry.contentType })
            res.end(text)
          },
          (error: Error) => json(res, 500, { error: error.message }),
        )
        return
      default:
        return json(res, 404, { error: 'not found' })
    }
  }
  // CONNECT never reaches `handle`: the server answers it with this list.
  return Object.assign(handle, { allowedMethods: ALLOWED_METHODS })
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}
