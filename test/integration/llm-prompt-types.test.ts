import assert from 'node:assert/strict'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { startAya } from '../helpers/aya.ts'
import { startUpstream } from '../helpers/upstreams.ts'

interface OpenAiError {
  readonly error: { readonly message: string; readonly param: string | null; readonly code: string }
}

/**
 * Aya's models gateway with `model` on one upstream that records each body it is sent and
 * answers `answer`; closed after the test.
 */
async function startRecordingGateway(t: TestContext, model: string, answer: string) {
  const bodies: string[] = []
  const upstream = await startUpstream((req, res) => {
    let raw = ''
    req.on('data', (chunk) => {
      raw += chunk
    })
    req.on('end', () => {
      bodies.push(raw)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(answer)
    })
  })
  t.after(() => upstream.close())
  const aya = await startAya({
    routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
    models: { [model]: { deployments: [{ upstream: 'pool' }] } },
    upstreams: { pool: { endpoints: [{ url: upstream.url }] } },
  })
  t.after(() => aya.close())
  return { aya, bodies }
}

describe('completions prompt and embeddings input of the wrong type', () => {
  test('a null, numeric or object prompt or input answers 400 naming it, and never reaches the engine', async (t) => {
    let reached = 0
    const upstream = await startUpstream((req, res) => {
      reached++
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{}')
      })
    })
    t.after(() => upstream.close())
    const aya = await startAya({
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { llama: { deployments: [{ upstream: 'pool' }] } },
      upstreams: { pool: { endpoints: [{ url: upstream.url }] } },
    })
    t.after(() => aya.close())

    for (const [path, name] of [
      ['/v1/completions', 'prompt'],
      ['/v1/embeddings', 'input'],
    ] as const) {
      for (const value of [null, 5, { text: 'hi' }, true]) {
        const res = await request(`${aya.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'llama', [name]: value }),
        })
        const what = `${path} ${name}: ${JSON.stringify(value)}`
        assert.equal(res.statusCode, 400, what)
        assert.equal(res.headers['x-aya-error-code'], 'LB_ERR_BAD_REQUEST', what)
        const body = (await res.body.json()) as OpenAiError
        assert.equal(body.error.param, name, what)
        assert.match(body.error.message, new RegExp(`'${name}'`), what)
      }
    }
    assert.equal(reached, 0)

    // A string and a list still go through.
    for (const [path, name, value] of [
      ['/v1/completions', 'prompt', 'Hi'],
      ['/v1/embeddings', 'input', ['Hi', 'there']],
    ] as const) {
      const res = await request(`${aya.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama', [name]: value }),
      })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
    assert.equal(reached, 2)
  })
})

describe('embeddings of a conversation', () => {
  test('vLLM’s chat-style embeddings request (messages, no input) is forwarded, its prompt read as a chat', async (t) => {
    const { aya, bodies } = await startRecordingGateway(
      t,
      'vlm2vec',
      '{"object":"list","data":[],"usage":{"prompt_tokens":9,"total_tokens":9}}',
    )
    const body = JSON.stringify({
      model: 'vlm2vec',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
            { type: 'text', text: 'Represent the given image.' },
          ],
        },
      ],
      encoding_format: 'float',
    })
    const res = await request(`${aya.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    assert.equal(res.statusCode, 200, await res.body.text())
    assert.deepEqual(bodies, [body])

    // With neither, it is still the client's mistake, named as the OpenAI API names it.
    const neither = await request(`${aya.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'vlm2vec', messages: 'hi' }),
    })
    assert.equal(neither.statusCode, 400)
    assert.equal(((await neither.body.json()) as OpenAiError).error.param, 'input')
    assert.equal(bodies.length, 1)
  })
})

describe('completions of prompt embeddings', () => {
  test('vLLM’s prompt_embeds request, with no prompt, is forwarded as sent', async (t) => {
    const { aya, bodies } = await startRecordingGateway(
      t,
      'llama',
      '{"object":"text_completion","choices":[{"index":0,"text":"hi"}]}',
    )
    // What the openai SDK sends for `prompt: null, extra_body: { prompt_embeds }`.
    for (const extra of [
      {
        prompt: null,
        prompt_embeds: 'UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAYXJjaGl2ZS9kYXRhLnBrbA==',
      },
      { prompt_embeds: ['UEsDBAAACAgAAAAA', 'UEsDBAAACAgAAAAB'] },
    ]) {
      const body = JSON.stringify({ model: 'llama', max_tokens: 5, ...extra })
      const res = await request(`${aya.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      assert.equal(res.statusCode, 200, await res.body.text())
      assert.equal(bodies.at(-1), body)
    }
  })
})
