import { once } from 'node:events'
import { connect, type Socket } from 'node:net'

/** A raw TCP client of an HTTP server, for requests no HTTP client would send. */
export interface RawClient {
  readonly socket: Socket
  /** Everything received so far, as text. */
  received(): string
  close(): void
}

/** Connects to `url`'s host port on 127.0.0.1 and collects what comes back. */
export async function openRawClient(url: string): Promise<RawClient> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.on('data', (chunk) => {
    text += chunk
  })
  return { socket, received: () => text, close: () => socket.destroy() }
}
