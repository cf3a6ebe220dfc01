import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  completionJson,
  completionSse,
  STREAM_CHUNKS,
  withUsage,
} from '../../../bench/gateway/answers.ts'
import { workload } from '../../../bench/gateway/workloads.ts'
import { createResponseTap } from '../../../src/llm/response-tap.ts'

// bench:gateway measures each gateway doing its full work on every response: these are the
// upstream's fixed answers, read by the same tap Aya runs on an LLM route.

test("the streamed answer gives Aya's tap a first token, every content chunk and the usage", () => {
  const body = workload('chat-stream').body
  const tap = createResponseTap('openai.chat', true)
  tap.onChunk(Buffer.from(withUsage(completionSse(), Buffer.byteLength(body))), 5)
  const result = tap.finish()
  assert.equal(result.firstTokenAtMs, 5)
  assert.equal(result.contentEvents, STREAM_CHUNKS)
  assert.deepEqual(result.usage, { promptTokens: 250, completionTokens: STREAM_CHUNKS })
  assert.ok(!result.sawError)
})

test("the non-streamed answer gives Aya's tap the usage, the long prompt's for the 32k body", () => {
  const tap = createResponseTap('openai.chat', false)
  const body = workload('chat-32k').body
  tap.onChunk(Buffer.from(withUsage(completionJson(), Buffer.byteLength(body))), 5)
  assert.deepEqual(tap.finish().usage, { promptTokens: 8000, completionTokens: STREAM_CHUNKS })
})

test('the answers are valid JSON and SSE, the same words either way', () => {
  const json = JSON.parse(withUsage(completionJson(), 100))
  const events = withUsage(completionSse(), 100)
    .split('\n\n')
    .filter((e) => e !== '')
  assert.equal(events.at(-1), 'data: [DONE]')
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)))
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
  assert.equal(text, json.choices[0].message.content)
  assert.deepEqual(chunks.at(-1).usage, json.usage)
})
