import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { eventually } from './eventually.ts'

/**
 * A door in front of one engine that passes every request through, streams included, and counts
 * the scrapes of `/metrics`. Shut, it answers them 503 while inference still goes through: an
 * engine that keeps serving whose metrics have stopped.
 */
export interface MetricsGate {
  /** The door's URL, to configure as the endpoint in place of the engine's. */
  readonly url: string
  /** Scrapes answered from the engine so far. */
  readonly served: number
  /** Scrapes answered 503 so far. */
  readonly refused: number
  /** Requests other than scrapes passed through so far. */
  readonly passed: number
  /** When the last scrape answered from the engine arrived (`performance.now()`). */
  readonly lastServedAtMs: number
  /** From now on, scrapes get 503. */
  shut(): void
  /** Resolves once `count` more scrapes than now have been answered from the engine. */
  moreServed(count: number): Promise<void>
  /** Resolves once `count` more scrapes than now have been refused. */
  moreRefused(count: number): Promise<void>
}

/** A gate in front of the engine at `target` on an ephemeral port; closed after the test. */
export async function startMetricsGate(
  t: Pick<TestContext, 'after'>,
  target: string,
): Promise<MetricsGate> {
  const { hostname, port } = new URL(target)
  let shut = false
  let served = 0
  let refused = 0
  let passed = 0
  let lastServedAtMs = Number.NEGATIVE_INFINITY
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/metrics') {
      if (shut) {
        refused++
        res.writeHead(503, { 'content-length': 0 })
        res.end()
        return
      }
      served++
      lastServedAtMs = performance.now()
    } else {
      passed++
    }
    const upstream = httpRequest(
      { hostname, port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        // Headers go on at once, as the engine sent them: a stream's come before its first token.
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        res.flushHeaders()
        answer.pipe(res)
        answer.on('error', () => res.destroy())
      },
    )
    upstream.on('error', () => res.destroy())
    // A client that leaves mid-stream leaves the engine too, as it would without the gate.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const { port: gatePort } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${gatePort}`,
    get served() {
      return served
    },
    get refused() {
      return refused
    },
    get passed() {
      return passed
    },
    get lastServedAtMs() {
      return lastServedAtMs
    },
    shut() {
      shut = true
    },
    moreServed(count) {
      const target = served + count
      return eventually(() => served >= target, `${count} more scrapes served`)
    },
    moreRefused(count) {
      const target = refused + count
      return eventually(() => refused >= target, `${count} more scrapes refused`)
    },
  }
}
