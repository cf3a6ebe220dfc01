import { connect, createServer, type NetConnectOpts, type Socket } from 'node:net'

export interface TcpRelay {
  /** `redis://127.0.0.1:<port>`: where clients connect to be relayed. */
  readonly url: string
  /**
   * Black-holes every relayed connection open now whose client has sent a SUBSCRIBE (a pub/sub
   * connection): nothing more is relayed either way and the server's side is closed, while the
   * client's side stays open and unanswered, as after a NAT entry expired or a failover behind a
   * VIP. Connections made later are relayed as usual. Returns how many it silenced.
   */
  silenceSubscribers(): number
  close(): Promise<void>
}

interface Relayed {
  readonly client: Socket
  readonly server: Socket
  hasSubscribed: boolean
  isSilenced: boolean
}

/** A TCP relay on 127.0.0.1, port 0, to `target` (a TCP address or a Unix socket's path). */
export async function startTcpRelay(target: NetConnectOpts): Promise<TcpRelay> {
  const relayed = new Set<Relayed>()
  const listener = createServer((client) => {
    const server = connect(target)
    const link: Relayed = { client, server, hasSubscribed: false, isSilenced: false }
    relayed.add(link)
    client.on('data', (chunk: Buffer) => {
      // Read and dropped once silenced, as a black hole takes what it is sent.
      if (link.isSilenced) return
      if (/subscribe/i.test(chunk.toString('latin1'))) link.hasSubscribed = true
      server.write(chunk)
    })
    server.on('data', (chunk: Buffer) => {
      if (!link.isSilenced) client.write(chunk)
    })
    const end = () => {
      relayed.delete(link)
      client.destroy()
      server.destroy()
    }
    client.on('close', end)
    client.on('error', () => {})
    server.on('close', () => {
      if (!link.isSilenced) end()
    })
    server.on('error', () => {})
  })
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  const { port } = listener.address() as { port: number }
  return {
    url: `redis://127.0.0.1:${port}`,
    silenceSubscribers() {
      let count = 0
      for (const link of relayed) {
        if (!link.hasSubscribed || link.isSilenced) continue
        link.isSilenced = true
        link.server.destroy()
        count++
      }
      return count
    },
    async close() {
      for (const link of relayed) {
        link.client.destroy()
        link.server.destroy()
      }
      relayed.clear()
      await new Promise((resolve) => listener.close(resolve))
    },
  }
}
