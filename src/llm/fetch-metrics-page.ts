import { pipeline, Transform } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { type Dispatcher, request } from 'undici'

/** The page's text, or why the server gave none (for the operator). */
export type MetricsPage =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: string }

export interface FetchMetricsPageOptions {
  /** The most bytes read, on the wire and once decoded. */
  readonly maxBodyBytes: number
  readonly signal: AbortSignal
}

/**
 * Asked as Prometheus asks: the classic text format, which every exporter serves (its parser reads
 * OpenMetrics too), gzip welcome. Exporters compress when asked, and some always do.
 */
const HEADERS = {
  accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1',
  'accept-encoding': 'gzip',
}

/** Go's HTTP client, which Prometheus scrapes with, gives up after 10 redirects. */
const MAX_REDIRECTS = 10
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/**
 * A Prometheus page's text, as a Prometheus server would fetch it: redirects followed (an exporter
 * that moved `/metrics` to `/metrics/`), a gzip body decoded. Not ok, with the reason, when the
 * server gave no page: not 200 after the redirects, an encoding other than gzip, or a plain body
 * of more than `maxBodyBytes`. A gzip body is held to the cap as it is decoded, so a small body that would
 * inflate to gigabytes is dropped at the cap, not inflated whole: it rejects then, as it does for
 * a corrupt gzip body, a failed connection or an aborted `signal` (each a failed scrape).
 */
export async function fetchMetricsPage(
  url: string,
  options: FetchMetricsPageOptions,
): Promise<MetricsPage> {
  let target = url
  for (let redirects = 0; ; redirects++) {
    const res = await request(target, { headers: HEADERS, signal: options.signal })
    const next = REDIRECT_STATUSES.has(res.statusCode) ? redirectTarget(res, target) : undefined
    if (next !== undefined && redirects < MAX_REDIRECTS) {
      await res.body.dump()
      target = next
      continue
    }
    if (res.statusCode !== 200) {
      await res.body.dump()
      return { ok: false, reason: `status ${res.statusCode}` }
    }
    return readBody(res, options.maxBodyBytes)
  }
}

/** Where a redirect points, when it points at an http(s) URL. */
function redirectTarget(res: Dispatcher.ResponseData, from: string): string | undefined {
  const location = res.headers.location
  if (typeof location !== 'string') return undefined
  let next: URL
  try {
    next = new URL(location, from)
  } catch {
    return undefined
  }
  return next.protocol === 'http:' || next.protocol === 'https:' ? next.href : undefined
}

async function readBody(res: Dispatcher.ResponseData, maxBytes: number): Promise<MetricsPage> {
  const encoding = String(res.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase()
  const gzip = encoding === 'gzip' || encoding === 'x-gzip'
  const refused =
    !gzip && encoding !== 'identity'
      ? `content-encoding ${encoding.slice(0, 64)}, not gzip`
      : Number(res.headers['content-length']) > maxBytes
        ? `more than ${maxBytes} bytes`
        : undefined
  if (refused !== undefined) {
    // Destroyed unread, a body that had all arrived emits an abort error: unheard, it was thrown.
    res.body.on('error', () => {}).destroy()
    return { ok: false, reason: refused }
  }
  const decoded: AsyncIterable<Buffer> = gzip
    ? pipeline(res.body, wireCap(maxBytes), createGunzip(), () => {})
    : res.body
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of decoded) {
    bytes += chunk.length
    // Leaving the loop destroys the stream, and with it the connection: the rest is not read.
    if (bytes > maxBytes) return { ok: false, reason: `more than ${maxBytes} bytes` }
    chunks.push(chunk)
  }
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') }
}

/** Fails the compressed stream past `maxBytes`: a gzip body of empty blocks decodes to nothing. */
function wireCap(maxBytes: number): Transform {
  let bytes = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      done(bytes > maxBytes ? new Error(`more than ${maxBytes} bytes compressed`) : null, chunk)
    },
  })
}
