import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import Anthropic from '@anthropic-ai/sdk'
import { type EngineServer, startEngineServer } from '../../src/sim/engine-server.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { countChatTokens } from '../../src/sim/sim-tokenizer.ts'

const MODEL = H100_LLAMA3_8B.modelName
const OUTPUT_TOKENS_HEADER = { 'x-aya-sim-output-tokens': '6' }

describe("sim engine server: Anthropic's Messages API", () => {
  let server: EngineServer
  let client: Anthropic
  before(async () => {
    server = await startEngineServer(
      { profile: H100_LLAMA3_8B, seed: 3 },
      { clock: createScaledClock({ speedup: 200 }) },
    )
    client = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 })
  })
  after(() => server.close())

  const system = 'You are terse.'
  const messages = [
    { role: 'user' as const, content: 'Say something nice about load balancers' },
    { role: 'assistant' as const, content: [{ type: 'text' as const, text: 'They share.' }] },
    { role: 'user' as const, content: 'More, please' },
  ]
  // The system prompt is the chat template's leading system message; blocks count by their text.
  const promptTokens = countChatTokens([
    { role: 'system', content: system },
    ...messages.map((m) => ({ role: m.role, content: m.content })),
  ])

  it('answers a message through the official client, with Anthropic usage', async () => {
    const message = await client.messages.create(
      { model: MODEL, max_tokens: 64, system, messages },
      { headers: OUTPUT_TOKENS_HEADER },
    )
    assert.match(message.id, /^msg-/)
    assert.equal(message.type, 'message')
    assert.equal(message.role, 'assistant')
    assert.equal(message.model, MODEL)
    assert.equal(message.stop_reason, 'end_turn')
    assert.equal(message.content.length, 1)
    assert.equal(message.content[0]?.type, 'text')
    assert.ok(message.content[0]?.type === 'text' && message.content[0].text.length > 0)
    assert.equal(message.usage.output_tokens, 6)
    assert.equal(
      message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0),
      promptTokens,
    )
  })

  it('streams the Messages events in order, the text matching the final message', async () => {
    const stream = client.messages.stream(
      { model: MODEL, max_tokens: 4, system: [{ type: 'text', text: system }], messages },
      { headers: { 'x-aya-sim-output-tokens': '40' } },
    )
    const names: string[] = []
    let text = ''
    for await (const event of stream) {
      names.push(event.type)
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text
      }
    }
    const final = await stream.finalMessage()
    assert.deepEqual(
      [...new Set(names)],
      [
        'message_start',
        'content_block_start',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    )
    assert.equal(names.filter((n) => n === 'content_block_delta').length, 4)
    assert.equal(final.stop_reason, 'max_tokens')
    assert.equal(final.content[0]?.type === 'text' && final.content[0].text, text)
    assert.equal(final.usage.output_tokens, 4)
    // The same prompt a second time: the engine's prefix cache serves part of it, and the final
    // usage says so, apart from input_tokens as the Messages API counts it.
    assert.ok((final.usage.cache_read_input_tokens ?? 0) > 0)
    assert.equal(
      final.usage.input_tokens + (final.usage.cache_read_input_tokens ?? 0),
      promptTokens,
    )
  })

  it('refuses what the Messages API refuses, in its error shape', async () => {
    const post = (body: unknown) =>
      fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      })
    const cases: [unknown, RegExp][] = [
      [{ model: MODEL, messages }, /max_tokens/],
      [{ max_tokens: 5, messages }, /model/],
      [{ model: MODEL, max_tokens: 5, messages: [] }, /messages/],
      [{ model: MODEL, max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, /role/],
      [{ model: MODEL, max_tokens: 5, messages, system: 7 }, /system/],
      ['{"model":', /not valid JSON/],
    ]
    for (const [body, message] of cases) {
      const res = await post(body)
      assert.equal(res.status, 400, JSON.stringify(body))
      const error = (await res.json()) as { type: string; error: { type: string; message: string } }
      assert.equal(error.type, 'error')
      assert.equal(error.error.type, 'invalid_request_error')
      assert.match(error.error.message, message)
    }
    await assert.rejects(
      client.messages.create({ model: 'claude-unknown', max_tokens: 5, messages }),
      (error: unknown) =>
        error instanceof Anthropic.NotFoundError && /claude-unknown/.test(String(error.message)),
    )
  })
})
