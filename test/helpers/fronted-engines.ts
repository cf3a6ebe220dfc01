import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { request } from 'undici'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import type { EngineProfile } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { warmUpSim } from '../../src/sim/warm-up.ts'

/**
 * A simulated vLLM engine behind a door the test controls. The door serves several model names
 * from the one engine, as vLLM serves a base model and its LoRA adapters from one KV cache, and
 * can hold inference requests: sent by the router, not yet seen by the engine.
 */
export interface FrontedEngine {
  readonly url: string
  readonly engine: EngineServer
  /** Inference requests that reached the door so far, held or not. */
  readonly arrived: number
  /** Holds inference requests at the door until `release`. */
  hold(): void
  /** Lets every held request, and those after it, through to the engine. */
  release(): void
  /** Resolves once `count` inference requests have reached the door. */
  arrivals(count: number): Promise<void>
}

/** Headers that describe one hop's connection, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'host',
  'upgrade',
])

const forwardable = (headers: IncomingMessage['headers']): Record<string, string | string[]> => {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

/**
 * `count` engines of `profile` sharing one engine clock `speedup` times faster than real time,
 * each behind its own door that serves every name in `models` (the first is the engine's own).
 * Closed after the test.
 */
export async function startFrontedEngines(
  t: Pick<TestContext, 'after'>,
  options: {
    readonly profile: EngineProfile
    readonly speedup: number
    readonly count: number
    readonly models: readonly [string, ...string[]]
  },
): Promise<FrontedEngine[]> {
  warmUpSim(options.profile)
  const clock = createScaledClock({ speedup: options.speedup })
  const [ownModel] = options.models
  const served = new Set(options.models)
  const fronts: FrontedEngine[] = []
  const closers: Array<() => Promise<void>> = []
  t.after(async () => {
    for (const front of fronts) front.release()
    await Promise.all(closers.map((close) => close()))
  })
  for (let i = 0; i < options.count; i++) {
    const engine = await startEngineServer(
      { profile: options.profile, seed: i + 1, modelName: ownModel },
      { clock },
    )
    closers.push(() => engine.close())
    fronts.push(await startDoor(engine, ownModel, served, closers))
  }
  return fronts
}

async function startDoor(
  engine: EngineServer,
  ownModel: string,
  served: ReadonlySet<string>,
  closers: Array<() => Promise<void>>,
): Promise<FrontedEngine> {
  let isHeld = false
  let arrived = 0
  let opened: Promise<void> = Promise.resolve()
  let open = (): void => {}
  const waiters: Array<{ count: number; resolve: () => void }> = []

  const forward = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: Buffer | undefined = chunks.length > 0 ? Buffer.concat(chunks) : undefined
    if (req.method === 'POST' && body !== undefined) {
      arrived++
      for (const waiter of waiters.splice(0)) {
        if (arrived >= waiter.count) waiter.resolve()
        else waiters.push(waiter)
      }
      const json = JSON.parse(body.toString('utf8')) as { model?: unknown }
      if (typeof json.model === 'string' && served.has(json.model) && json.model !== ownModel) {
        body = Buffer.from(JSON.stringify({ ...json, model: ownModel }))
      }
      await opened
    }
    const aborted = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) aborted.abort()
    })
    const upstream = await request(`${engine.url}${req.url ?? '/'}`, {
      method: req.method as 'GET' | 'POST',
      headers: forwardable(req.headers),
      ...(body === undefined ? {} : { body }),
      signal: aborted.signal,
    })
    res.writeHead(upstream.statusCode, forwardable(upstream.headers))
    for await (const chunk of upstream.body) res.write(chunk)
    res.end()
  }

  const server = createServer((req, res) => {
    forward(req, res).catch(() => res.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  closers.push(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    engine,
    get arrived() {
      return arrived
    },
    hold() {
      if (isHeld) return
      isHeld = true
      opened = new Promise((resolve) => {
        open = resolve
      })
    },
    release() {
      isHeld = false
      open()
    },
    arrivals(count) {
      if (arrived >= count) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ count, resolve }))
    },
  }
}
