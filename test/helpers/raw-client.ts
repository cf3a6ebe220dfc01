import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { gzipSync } from 'node:zlib'

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

/**
 * Posts `json` gzipped to `url`'s chat completions and hangs up at once. Aya inflates a gzip body
 * off the event loop, so it sees the hang-up only after the body is read: a client gone before
 * its request is placed or sent.
 */
export async function postGzipAndHangUp(url: string, json: string): Promise<void> {
  const body = gzipSync(json)
  const client = await openRawClient(url)
  client.socket.on('error', () => {})
  client.socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: ${body.length}\r\n\r\n`,
  )
  client.socket.end(body)
  client.close()
}

/**
 * `length` characters that gzip about 50 times smaller: runs of `x`, each ended by a pseudo-random
 * digit. Aya refuses a body that inflates more than 100 times (past 64 KiB), as a bomb.
 */
export function compressibleText(length: number): string {
  let seed = 1
  const runs: string[] = []
  for (let at = 0; at < length; at += 50) {
    seed = (seed * 48_271) % 2_147_483_647
    runs.push(`${'x'.repeat(49)}${seed % 10}`)
  }
  return runs.join('').slice(0, length)
}
