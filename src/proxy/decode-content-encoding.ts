import { constants } from 'node:buffer'
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import { ProxyError } from './errors.ts'

type Decoder = (input: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions) => Promise<Buffer>

const gunzip: Decoder = promisify(zlib.gunzip)
const inflate: Decoder = promisify(zlib.inflate)
const inflateRaw: Decoder = promisify(zlib.inflateRaw)
// HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate: the header tells them apart.
const inflateEither: Decoder = (input, options) =>
  hasZlibHeader(input) ? inflate(input, options) : inflateRaw(input, options)

const DECODERS: ReadonlyMap<string, Decoder> = new Map([
  ['gzip', gunzip],
  ['x-gzip', gunzip],
  ['deflate', inflateEither],
  ['br', promisify(zlib.brotliDecompress) as Decoder],
])

/**
 * The most codings a body may stack. Each layer may inflate up to the limit, so the work grows with
 * the count, which only the header size bounds otherwise: 2,000 stored gzip layers of 1 MiB (a
 * 1.4 MB body) took 7 s to undo. Real clients apply one; undici caps responses at the same five.
 */
const MAX_CODINGS = 5

/**
 * How many times its size on the wire a body may inflate to, past the first 64 KiB. Parsing is what
 * a body costs (docs/configuration.md), and `maxBodyBytes` bounds it by what a client sends: 16 KB
 * of gzip that inflated to 16 MiB of `{},` held the event loop for 3 s, for every client. Envoy's
 * decompressor stops at the same ratio; JSON compresses 3 to 20 times.
 */
const MAX_INFLATE_RATIO = 100
const INFLATE_GRACE_BYTES = 64 * 1024

/** A Content-Encoding value's codings, in order, lower-cased, without `identity` or empties. */
export function contentCodings(contentEncoding: string): string[] {
  return contentEncoding
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity')
}

/**
 * Undoes a request body's `Content-Encoding` (gzip, deflate, br, or a list of them), so an LLM
 * route can read the JSON inside. The decoded size is bounded by `maxBodyBytes` as the encoded one
 * was, and past 64 KiB by 100 times the encoded size: zlib stops at the limit, so a small body that
 * inflates to gigabytes costs no more than an honest one of its size. Returns the body unchanged
 * for no encoding or `identity`.
 */
export async function decodeContentEncoding(
  body: Buffer,
  contentEncoding: string | undefined,
  maxBodyBytes: number,
): Promise<Buffer> {
  if (contentEncoding === undefined) return body
  const codings = contentCodings(contentEncoding)
  if (codings.length > MAX_CODINGS) {
    throw new ProxyError('LB_ERR_BAD_REQUEST', {
      source: 'downstream',
      message: `too many content-encodings (${codings.length}; at most ${MAX_CODINGS})`,
    })
  }
  let decoded = body
  const maxInflatedBytes = Math.max(INFLATE_GRACE_BYTES, MAX_INFLATE_RATIO * body.length)
  const maxOutputLength = Math.min(maxBodyBytes, constants.MAX_LENGTH, maxInflatedBytes)
  // Codings are listed in the order they were applied, so they come off in reverse.
  for (const coding of codings.reverse()) {
    const decoder = DECODERS.get(coding)
    if (decoder === undefined) {
      throw new ProxyError('LB_ERR_BAD_REQUEST', {
        source: 'downstream',
        message: `unsupported content-encoding '${coding}' (supported: gzip, deflate, br)`,
      })
    }
    try {
      decoded = await decoder(decoded, { maxOutputLength })
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ProxyError('LB_ERR_BODY_TOO_LARGE', {
          source: 'downstream',
          cause: error,
          ...(maxInflatedBytes < maxBodyBytes && {
            message: `the request body inflates to more than ${MAX_INFLATE_RATIO} times its encoded size`,
          }),
        })
      }
      throw new ProxyError('LB_ERR_BAD_REQUEST', {
        source: 'downstream',
        message: `the request body is not valid ${coding} data`,
        cause: error,
      })
    }
  }
  return decoded
}

function hasZlibHeader(input: Buffer): boolean {
  if (input.length < 2) return false
  const cmf = input[0]!
  return (cmf & 0x0f) === 8 && ((cmf << 8) | input[1]!) % 31 === 0
}
