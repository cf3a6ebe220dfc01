import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { startSimGateway } from '../helpers/aya.ts'
import { endpointIdOf, startSimEngines } from '../helpers/sim-engines.ts'

/**
 * The black hole: an endpoint that fails at once looks idle and fast, so policies that favour
 * idle or fast endpoints send it most of the traffic. Three healthy simulated engines and one
 * rogue `node:http` endpoint behind Aya; what share of the requests the rogue gets.
 */

type Rogue = (req: IncomingMessage, res: ServerResponse) => void

async function startRogue(t: TestContext, answer: Rogue): Promise<string> {
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => answer(req, res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  server.unref()
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const REQUESTS = 200
const CONCURRENCY = 8

let promptCount = 0

/** The share of `REQUESTS` streamed chats, `CONCURRENCY` at a time, that Aya placed on `rogueUrl`. */
async function rogueShare(
  t: TestContext,
  policy: string,
  rogueUrl: string,
  engineUrls: readonly string[],
): Promise<number> {
  const aya = await startSimGateway(
    t,
    {
      policy,
      endpoints: [...engineUrls.map((url) => ({ url })), { url: rogueUrl }],
      engineMetrics: false,
    },
    { route: { debugHeaders: true } },
  )
  const rogueId = endpointIdOf({ url: rogueUrl })
  let sent = 0
  let onRogue = 0
  const worker = async () => {
    while (sent < REQUESTS) {
      sent++
      const res = await request(`${aya.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'llama',
          max_tokens: 32,
          stream: true,
          messages: [{ role: 'user', content: `prompt-${++promptCount} ${'abc '.repeat(200)}` }],
        }),
      })
      if (res.headers['x-aya-endpoint'] === rogueId) onRogue++
      await res.body.text().catch(() => undefined)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  await aya.close()
  return onRogue / REQUESTS
}

const startEngines = async (t: TestContext) =>
  (await startSimEngines(t, [H100_LLAMA3_8B, H100_LLAMA3_8B, H100_LLAMA3_8B], 4)).map(
    (engine) => engine.url,
  )

/** A fair share is 25 %; the black hole took 38-76 % before failures counted against it. */
const MAX_ROGUE_SHARE = 0.15

/** Misbehaviours that fail a request at once, each as the rogue answers it. */
const FAST_FAILURES: ReadonlyArray<readonly [string, Rogue]> = [
  [
    'an instant 500',
    (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end('{"error":{"message":"boom"}}')
    },
  ],
  ['an instant connection reset', (req) => req.socket.destroy()],
  [
    'an instant 200 whose stream carries an error event',
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end('data: {"error":{"message":"boom"}}\n\ndata: [DONE]\n\n')
    },
  ],
  [
    'an instant 200 whose stream is empty',
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end('data: [DONE]\n\n')
    },
  ],
]

describe('an endpoint that fails at once does not draw the traffic', () => {
  for (const policy of ['least-request', 'least-response-time', 'aya']) {
    for (const [failure, answer] of FAST_FAILURES) {
      test(`${policy} sends an endpoint answering ${failure} well under its fair share`, async (t) => {
        const engines = await startEngines(t)
        const rogue = await startRogue(t, answer)
        const share = await rogueShare(t, policy, rogue, engines)
        assert.ok(share < MAX_ROGUE_SHARE, `the rogue got ${(share * 100).toFixed(1)} %`)
      })
    }
  }
})
