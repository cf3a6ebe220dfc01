// The bare baseline: a ~20-line node:http reverse proxy with a keep-alive Agent (research note
// general-lbs.md §4.2, "node-http"). PORT and UPSTREAM_PORT come from the environment.
import http from 'node:http'

const port = Number(process.env.PORT)
const upstreamPort = Number(process.env.UPSTREAM_PORT)
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' })
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
])
const strip = (h) => {
  const o = {}
  for (const k in h) if (!HOP.has(k)) o[k] = h[k]
  return o
}
http
  .createServer((req, res) => {
    const preq = http.request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: strip(req.headers),
        agent,
      },
      (pres) => {
        res.writeHead(pres.statusCode, strip(pres.headers))
        pres.pipe(res)
      },
    )
    preq.on('error', () => {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    })
    req.pipe(preq)
  })
  .listen(port, '127.0.0.1')
