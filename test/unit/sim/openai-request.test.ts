import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isError, type OpenAiRequest, parseOpenAiRequest } from '../../../src/sim/openai-request.ts'

function ok(api: 'chat' | 'completions', body: unknown): OpenAiRequest {
  const parsed = parseOpenAiRequest(api, body)
  if (isError(parsed)) assert.fail(parsed.message)
  return parsed
}

describe('sim openai request', () => {
  it('reads stream, include_usage and max_completion_tokens ahead of max_tokens', () => {
    const r = ok('chat', {
      model: 'm',
      messages: [{ role: 'user', content: 'a b c' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 9,
      max_completion_tokens: 5,
    })
    assert.deepEqual([r.model, r.isStream, r.includeUsage, r.maxTokens], ['m', true, true, 5])
    assert.equal(r.prompt.promptTokens, 4)
  })

  it('counts a completions prompt given as text, a one-element list or token ids', () => {
    assert.equal(ok('completions', { prompt: 'a b' }).prompt.promptTokens, 2)
    assert.equal(ok('completions', { prompt: ['a b c'] }).prompt.promptTokens, 3)
    assert.equal(ok('completions', { prompt: [1, 2, 3, 4] }).prompt.promptTokens, 4)
  })

  it('rejects what the simulator cannot serve, naming the parameter', () => {
    const cases: [unknown, string | null][] = [
      [[], null],
      [{ messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n'],
      [{ messages: [{ content: 'x' }] }, 'messages'],
      [{ messages: [{ role: 'user', content: 42 }] }, 'messages'],
      [{ messages: [{ role: 'user', content: { text: 'x' } }] }, 'messages'],
      [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
      [{ messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
    ]
    for (const [body, param] of cases) {
      const parsed = parseOpenAiRequest('chat', body)
      assert.ok(isError(parsed), JSON.stringify(body))
      assert.equal(parsed.param, param)
    }
    // An assistant turn of tool calls only has no content, as vLLM's schema allows.
    const toolTurn = { role: 'assistant', content: null, tool_calls: [] }
    assert.ok(!isError(parseOpenAiRequest('chat', { messages: [toolTurn] })))
    const bad = parseOpenAiRequest('completions', { prompt: ['a', 'b'] })
    assert.ok(isError(bad))
    assert.equal(bad.param, 'prompt')
  })
})
