import { createServer, type Server } from 'node:http'

export interface DemoBackends {
  readonly urls: readonly string[]
  close(): Promise<void>
}

/**
 * Two tiny HTTP backends for the quick start, so `npm start` shows a working proxy on a fresh
 * machine. Each answers JSON naming itself, and `/stream` sends a short server-sent event stream.
 */
export async function startDemoBackends(
  ports: readonly number[],
  host = '127.0.0.1',
): Promise<DemoBackends> {
  const servers: Server[] = []
  const urls: string[] = []
  for (const [index, port] of ports.entries()) {
    const name = `demo-${index + 1}`
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        let n = 0
        const timer = setInterval(() => {
          n++
          res.write(`data: {"backend":"${name}","n":${n}}\n\n`)
          if (n === 5) {
            clearInterval(timer)
            res.end('data: [DONE]\n\n')
          }
        }, 200)
        res.on('close', () => clearInterval(timer))
        return
      }
      req.resume()
      req.on('end', () => {
        const body = JSON.stringify({
          backend: name,
          method: req.method,
          url: req.url,
          headers: req.headers,
        })
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(body)
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    const address = server.address()
    const boundPort = address && typeof address === 'object' ? address.port : port
    servers.push(server)
    urls.push(`http://${host}:${boundPort}`)
  }
  return {
    urls,
    async close() {
      await Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      )
    },
  }
}
