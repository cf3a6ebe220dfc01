import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createResponseTap } from '../../../src/llm/response-tap.ts'

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
const chunk = (content: string) => ({ choices: [{ index: 0, delta: { content } }] })

describe('response tap', () => {
  test('times the first and last content events, ignoring the role prelude', () => {
    const tap = createResponseTap('openai.chat', true)
    tap.onChunk(Buffer.from(sse({ choices: [{ delta: { role: 'assistant', content: '' } }] })), 10)
    assert.equal(tap.firstTokenAtMs, undefined)
    tap.onChunk(Buffer.from(sse(chunk('Hel'))), 25)
    tap.onChunk(Buffer.from(sse(chunk('lo'))), 40)
    tap.onChunk(
      Buffer.from(
        `${sse({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 2 } })}data: [DONE]\n\n`,
      ),
      41,
    )
    assert.deepEqual(tap.finish(), {
      firstTokenAtMs: 25,
      lastTokenAtMs: 40,
      contentEvents: 2,
      usage: { promptTokens: 12, completionTokens: 2 },
    })
  })

  test('joins an event split across chunk boundaries', () => {
    const tap = createResponseTap('openai.chat', true)
    const text =
      sse(chunk('abc')) + sse({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 1 } })
    for (let i = 0; i < text.length; i += 7) tap.onChunk(Buffer.from(text.slice(i, i + 7)), i)
    const result = tap.finish()
    assert.equal(result.contentEvents, 1)
    assert.deepEqual(result.usage, { promptTokens: 3, completionTokens: 1 })
  })

  test('reads Anthropic stream usage from message_start and message_delta', () => {
    const tap = createResponseTap('anthropic.messages', true)
    const events = [
      `event: message_start\n${sse({ type: 'message_start', message: { usage: { input_tokens: 20, output_tokens: 1 } } })}`,
      `event: content_block_delta\n${sse({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi' } })}`,
      `event: message_delta\n${sse({ type: 'message_delta', usage: { output_tokens: 7 } })}`,
    ]
    for (const [i, event] of events.entries()) tap.onChunk(Buffer.from(event), i * 10)
    const result = tap.finish()
    assert.equal(result.firstTokenAtMs, 10)
    assert.deepEqual(result.usage, { promptTokens: 20, completionTokens: 7 })
  })

  test('reads usage from a complete JSON body', () => {
    const tap = createResponseTap('openai.chat', false)
    const body = JSON.stringify({
      choices: [{ message: { content: 'x' } }],
      usage: { prompt_tokens: 5, completion_tokens: 9 },
    })
    tap.onChunk(Buffer.from(body.slice(0, 20)), 100)
    tap.onChunk(Buffer.from(body.slice(20)), 101)
    assert.deepEqual(tap.finish(), {
      firstTokenAtMs: 100,
      lastTokenAtMs: 101,
      contentEvents: 1,
      usage: { promptTokens: 5, completionTokens: 9 },
    })
  })
})
