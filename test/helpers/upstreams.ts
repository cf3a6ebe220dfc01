import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface TestUpstream {
  readonly url: string
  readonly port: number
  readonly server: Server
  /** Requests seen, in arrival order. */
  readonly requests: IncomingMessage[]
  close(): Promise<void>
}

/** A real HTTP server on 127.0.0.1:0 with the given handler. */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestUpstream> {
  const requests: IncomingMessage[] = []
  const server = createServer((req, res) => {
    requests.push(req)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** An upstream that answers JSON naming itself, after draining the request body. */
export function startNamedUpstream(name: string): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    req.on('end', () => {
      const body = JSON.stringify({
        name,
        url: req.url,
        method: req.method,
        bytes,
        headers: req.headers,
      })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(body)
    })
  })
}

/** A port that was just bound and released: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
