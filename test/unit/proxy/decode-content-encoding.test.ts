import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import {
  contentCodings,
  decodeContentEncoding,
} from '../../../src/proxy/decode-content-encoding.ts'
import { ProxyError } from '../../../src/proxy/errors.ts'

const json = Buffer.from('{"model":"m","prompt":"hello"}')

describe('decoding a request body content-encoding', () => {
  test('decodes gzip, deflate (zlib or raw), br and stacked codings', async () => {
    assert.deepEqual(await decodeContentEncoding(gzipSync(json), 'gzip', 1024), json)
    assert.deepEqual(await decodeContentEncoding(deflateSync(json), 'deflate', 1024), json)
    assert.deepEqual(await decodeContentEncoding(deflateRawSync(json), 'Deflate', 1024), json)
    assert.deepEqual(await decodeContentEncoding(brotliCompressSync(json), 'br', 1024), json)
    const stacked = brotliCompressSync(gzipSync(json))
    assert.deepEqual(await decodeContentEncoding(stacked, 'gzip, br', 1024), json)
  })

  test('returns the body itself with no coding or identity', async () => {
    assert.equal(await decodeContentEncoding(json, undefined, 1024), json)
    assert.equal(await decodeContentEncoding(json, 'identity', 1024), json)
  })

  test('refuses a body that inflates past the limit with 413, without inflating it all', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024))
    await assert.rejects(
      decodeContentEncoding(bomb, 'gzip', 64 * 1024),
      (error: unknown) => error instanceof ProxyError && error.code === 'LB_ERR_BODY_TOO_LARGE',
    )
  })

  test('refuses a body that inflates past 100 times its encoded size with 413, within maxBodyBytes', async () => {
    // 16 MiB of `{},` gzip to 16 KB, and cost 3 s of JSON.parse on the one event loop.
    const bomb = gzipSync(Buffer.from(`[${'{},'.repeat(1024 * 1024)}{}]`), { level: 9 })
    await assert.rejects(
      decodeContentEncoding(bomb, 'gzip', 16 * 1024 * 1024),
      (error: unknown) =>
        error instanceof ProxyError &&
        error.code === 'LB_ERR_BODY_TOO_LARGE' &&
        /more than 100 times its encoded size/.test(error.message),
    )
  })

  test('decodes a body that inflates past 100 times within its first 64 KiB', async () => {
    const repeated = Buffer.from(JSON.stringify({ model: 'm', prompt: 'x'.repeat(60_000) }))
    assert.deepEqual(await decodeContentEncoding(gzipSync(repeated), 'gzip', 1024 * 1024), repeated)
  })

  test('decodes a body that inflates 100 times or less, however large', async () => {
    // Pseudo-random digits: about 2 times smaller gzipped, as text that is not one repeated string.
    let seed = 1
    const digits = Array.from({ length: 1024 * 1024 }, () => {
      seed = (seed * 48_271) % 2_147_483_647
      return seed % 10
    }).join('')
    const text = Buffer.from(JSON.stringify({ model: 'm', prompt: digits }))
    assert.deepEqual(await decodeContentEncoding(gzipSync(text), 'gzip', 16 * 1024 * 1024), text)
  })

  test('answers corrupt data and unknown codings with 400 naming the coding', async () => {
    await assert.rejects(
      decodeContentEncoding(json, 'gzip', 1024),
      (error: unknown) =>
        error instanceof ProxyError &&
        error.code === 'LB_ERR_BAD_REQUEST' &&
        /gzip/.test(error.message),
    )
    await assert.rejects(
      decodeContentEncoding(json, 'zstd', 1024),
      (error: unknown) =>
        error instanceof ProxyError &&
        error.code === 'LB_ERR_BAD_REQUEST' &&
        /zstd/.test(error.message),
    )
  })

  test('refuses a chain of more than five codings with 400 before decoding any', async () => {
    // Each layer may inflate up to the limit: 2,000 stored gzip layers of 1 MiB took 7 s to undo.
    let nested = json
    for (let i = 0; i < 6; i++) nested = gzipSync(nested)
    await assert.rejects(
      decodeContentEncoding(nested, Array(6).fill('gzip').join(', '), 1024),
      (error: unknown) =>
        error instanceof ProxyError &&
        error.code === 'LB_ERR_BAD_REQUEST' &&
        /too many content-encodings/.test(error.message),
    )
    nested = json
    for (let i = 0; i < 5; i++) nested = gzipSync(nested)
    assert.deepEqual(
      await decodeContentEncoding(nested, 'gzip,gzip,identity,gzip,gzip,gzip', 1024),
      json,
    )
  })

  test('reads codings case-insensitively, and identity or an empty entry as none', () => {
    assert.deepEqual(contentCodings('Identity, '), [])
    assert.deepEqual(contentCodings('GZIP, br'), ['gzip', 'br'])
  })
})
