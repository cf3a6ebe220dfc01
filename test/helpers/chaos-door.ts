import { once } from 'node:events'
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { TestContext } from 'node:test'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import type { EngineProfile } from '../../src/sim/profiles.ts'
import type { Clock } from '../../src/util/clock.ts'

/**
 * What a door does to one inference request, named by the request's `x-chaos-fault` header (sent
 * by the test's client and passed on by Aya): answer it with a 500 or 503 itself, reset the
 * connection before any answer, never answer it, or pass it through and then go silent after the
 * head of the engine's response, or reset or go silent after the first few bytes of its body.
 * Anything else passes through.
 */
export type ChaosFault =
  | 'status-500'
  | 'status-503'
  | 'reset'
  | 'hang'
  | 'reset-mid-response'
  | 'stall-after-head'
  | 'stall-mid-response'

export const CHAOS_FAULT_HEADER = 'x-chaos-fault'

/** A simulated engine behind a door that injects faults and can go down with it for a while. */
export interface ChaosDoor {
  readonly url: string
  /** The engine behind the door now (a restart replaces it). */
  readonly engine: EngineServer
  /**
   * The engine restarts: the door stops listening and cuts every connection (so Aya's connects
   * are refused), the engine closes (its streams cut, its cache lost), and after `downMs` both
   * come back on the same ports, the engine empty.
   */
  restart(downMs: number): Promise<void>
  /** Closes the door and its engine; once (again after the test). */
  close(): Promise<void>
}

/** `count` engines of `profile` on one engine `clock`, each behind a chaos door; closed after the test. */
export async function startChaosDoors(
  t: Pick<TestContext, 'after'>,
  options: { readonly profile: EngineProfile; readonly count: number; readonly clock: Clock },
): Promise<ChaosDoor[]> {
  const doors: ChaosDoor[] = []
  t.after(() => Promise.all(doors.map((door) => door.close())).then(() => undefined))
  for (let i = 0; i < options.count; i++) {
    doors.push(await startChaosDoor(options.profile, i + 1, options.clock))
  }
  return doors
}

/** Body bytes a mid-response fault lets through first. */
const MID_RESPONSE_BYTES = 48

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade'])

const forwardable = (headers: IncomingMessage['headers']): Record<string, string | string[]> => {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

async function startChaosDoor(
  profile: EngineProfile,
  seed: number,
  clock: Clock,
): Promise<ChaosDoor> {
  let engine = await startEngineServer({ profile, seed }, { clock })
  const sockets = new Set<Socket>()

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const fault = req.headers[CHAOS_FAULT_HEADER]
    if (fault === 'status-500' || fault === 'status-503' || fault === 'reset' || fault === 'hang') {
      req.resume()
      req.once('end', () => {
        if (fault === 'reset') return void req.socket.destroy()
        // Never answered: the socket stays open until Aya gives up on it.
        if (fault === 'hang') return
        const body = JSON.stringify({ error: { message: 'injected', type: 'server_error' } })
        res.writeHead(fault === 'status-500' ? 500 : 503, { 'content-type': 'application/json' })
        res.end(body)
      })
      return
    }
    const upstream = httpRequest(
      {
        hostname: '127.0.0.1',
        port: engine.port,
        method: req.method,
        path: req.url,
        headers: forwardable(req.headers),
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers))
        // The head goes at once, whatever follows: a stall after it is one after the head.
        res.flushHeaders()
        // How much of the body passes before the fault: nothing, or its first bytes (part of the
        // first event of a stream, or of a whole body), however the engine's writes were cut up.
        const passBytes =
          fault === 'stall-after-head'
            ? 0
            : fault === 'stall-mid-response' || fault === 'reset-mid-response'
              ? MID_RESPONSE_BYTES
              : Number.POSITIVE_INFINITY
        let passed = 0
        answer.on('data', (chunk: Buffer) => {
          if (passed >= passBytes) return
          const part = chunk.subarray(0, passBytes - passed)
          passed += part.length
          res.write(part)
          if (passed < passBytes) return
          if (fault === 'reset-mid-response') {
            answer.destroy()
            res.destroy()
          }
          // Otherwise silent from here on: the engine's rest is read and dropped.
        })
        answer.on('end', () => {
          if (passed < passBytes) res.end()
        })
        answer.on('error', () => res.destroy())
      },
    )
    upstream.on('error', () => res.destroy())
    // A client (Aya) that leaves leaves the engine too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  }

  const server = createServer(handle)
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const listen = async (port: number) => {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
  }
  const shut = async () => {
    const closed = once(server, 'close')
    server.close()
    for (const socket of sockets) socket.destroy()
    await closed
  }
  await listen(0)
  const { port } = server.address() as AddressInfo
  let isOpen = true
  let isClosed = false
  return {
    url: `http://127.0.0.1:${port}`,
    get engine() {
      return engine
    },
    async restart(downMs) {
      isOpen = false
      await shut()
      const enginePort = engine.port
      await engine.close()
      await new Promise((resolve) => setTimeout(resolve, downMs))
      engine = await startEngineServer({ profile, seed: seed + 100, port: enginePort }, { clock })
      await listen(port)
      isOpen = true
    },
    async close() {
      if (isClosed) return
      isClosed = true
      if (isOpen) await shut()
      isOpen = false
      await engine.close()
    },
  }
}
