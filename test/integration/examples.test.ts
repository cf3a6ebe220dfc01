import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { request } from 'undici'
import { parse } from 'yaml'
import { parseConfigText } from '../../src/config/load.ts'
import { startAya } from '../helpers/aya.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { startNamedUpstream, type TestUpstream } from '../helpers/upstreams.ts'

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples')
const ROOT_CONFIG = join(import.meta.dirname, '..', '..', 'aya.yaml')

/**
 * Every example config is validated as written, then booted with its listeners on port 0 and its
 * endpoints pointed at live test upstreams, and every route answers without a 5xx.
 */
async function bootExample(t: import('node:test').TestContext, file: string): Promise<void> {
  const text = await readFile(file, 'utf8')
  parseConfigText(text, {})
  const raw = parse(text) as {
    listeners: Array<Record<string, unknown>>
    routes: Array<{
      match?: { pathPrefix?: string; method?: string | string[]; headers?: Record<string, string> }
    }>
    upstreams: Record<string, { endpoints?: Array<{ url: string }> }>
    admin?: unknown
    state?: { store?: string; url?: string }
  }
  // An example that keeps its state in Redis gets a real one.
  if (raw.state?.store === 'redis') {
    const redis = await startRedis()
    t.after(() => redis.close())
    raw.state.url = redis.url
  }
  const upstreams = new Map<string, TestUpstream>()
  for (const upstream of Object.values(raw.upstreams)) {
    for (const endpoint of upstream.endpoints ?? []) {
      if (!upstreams.has(endpoint.url))
        upstreams.set(endpoint.url, await startNamedUpstream(endpoint.url))
      endpoint.url = upstreams.get(endpoint.url)!.url
    }
  }
  t.after(() => Promise.all([...upstreams.values()].map((u) => u.close())))
  raw.listeners = raw.listeners.map((listener) => ({ ...listener, port: 0 }))
  raw.admin = { address: '127.0.0.1', port: 0 }
  const aya = await startAya(raw as unknown as Record<string, unknown>)
  t.after(() => aya.close())
  for (const route of raw.routes) {
    const method = Array.isArray(route.match?.method)
      ? route.match.method[0]
      : (route.match?.method ?? 'GET')
    const res = await request(`${aya.url}${route.match?.pathPrefix ?? '/'}`, {
      method: method as 'GET',
      headers: { ...route.match?.headers, 'x-user': 'u1', 'x-session-id': 's1' },
    })
    await res.body.dump()
    assert.ok(
      res.statusCode < 500,
      `${file} route ${route.match?.pathPrefix}: status ${res.statusCode}`,
    )
  }
}

describe('example configs', async () => {
  const files = (await readdir(EXAMPLES)).filter((name) => name.endsWith('.yaml'))
  test('there are examples to boot', () => assert.ok(files.length >= 3))
  for (const name of files) {
    test(`boots examples/${name} and serves every route`, (t) =>
      bootExample(t, join(EXAMPLES, name)))
  }
  test('boots the default aya.yaml', (t) => bootExample(t, ROOT_CONFIG))

  test('answers the README quick start’s OpenAI and Anthropic requests on the default aya.yaml', async (t) => {
    const raw = parse(await readFile(ROOT_CONFIG, 'utf8')) as Record<string, unknown> & {
      listeners: Array<Record<string, unknown>>
    }
    raw.listeners = raw.listeners.map((listener) => ({ ...listener, port: 0 }))
    raw.admin = { address: '127.0.0.1', port: 0 }
    const aya = await startAya(raw)
    t.after(() => aya.close())
    const post = (path: string, body: unknown) =>
      request(`${aya.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const chat = await post('/v1/chat/completions', {
      model: 'llama-3.1-8b',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
    })
    assert.equal(chat.statusCode, 200)
    assert.match(await chat.body.text(), /data: \[DONE\]\n\n$/)
    const message = await post('/v1/messages', {
      model: 'llama-3.1-8b',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'Hello' }],
    })
    assert.equal(message.statusCode, 200)
    const body = (await message.body.json()) as { type: string; content: Array<{ text: string }> }
    assert.equal(body.type, 'message')
    assert.ok((body.content[0]?.text.length ?? 0) > 0)
  })
})
