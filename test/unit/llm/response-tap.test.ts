import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { LlmApi } from '../../../src/llm/llm-request.ts'
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
      bodyBytes: 269,
      usage: { promptTokens: 12, completionTokens: 2 },
    })
  })

  test('notices a stream that fails in band, in each API’s error event', () => {
    for (const [api, events] of [
      [
        'anthropic.messages',
        sse({ type: 'message_start', message: { usage: { input_tokens: 9, output_tokens: 1 } } }) +
          `event: error\n${sse({ type: 'error', error: { type: 'overloaded_error', message: 'x' } })}`,
      ],
      ['openai.chat', `${sse(chunk('a'))}${sse({ error: { message: 'x' } })}data: [DONE]\n\n`],
      ['openai.responses', sse({ type: 'response.failed', response: { status: 'failed' } })],
      ['openai.responses', sse({ type: 'error', code: 'server_error', message: 'x' })],
    ] as const) {
      const tap = createResponseTap(api, true)
      tap.onChunk(Buffer.from(events), 1)
      assert.equal(tap.finish().sawError, true, `${api}: ${events}`)
    }
    // A chunk that merely mentions an error, or says it has none, is no error event.
    for (const event of [chunk('{"error": 1}'), { error: null, choices: [] }]) {
      const tap = createResponseTap('openai.chat', true)
      tap.onChunk(Buffer.from(sse(event)), 1)
      assert.equal(tap.finish().sawError, undefined, JSON.stringify(event))
    }
  })

  test('reads the first error event’s message once the stream is done', () => {
    const tap = createResponseTap('openai.chat', true)
    tap.onChunk(Buffer.from(sse(chunk('a'))), 1)
    tap.onChunk(Buffer.from(sse({ error: { message: 'engine dead' } }).slice(0, 12)), 2)
    tap.onChunk(Buffer.from(sse({ error: { message: 'engine dead' } }).slice(12)), 3)
    tap.onChunk(Buffer.from(sse({ error: { message: 'second' } })), 4)
    const result = tap.finish()
    assert.equal(result.sawError, true)
    assert.equal(result.errorMessage, 'engine dead')
  })

  test('reports no error message for a stream without an error event', () => {
    const tap = createResponseTap('openai.chat', true)
    tap.onChunk(Buffer.from(sse(chunk('"error": {"message": "no"}'))), 1)
    assert.equal('errorMessage' in tap.finish(), false)
  })

  test('ignores a byte order mark before the first event, as the SSE spec says', () => {
    const tap = createResponseTap('openai.chat', true)
    tap.onChunk(Buffer.from(`\uFEFF${sse(chunk('A'))}`), 5)
    tap.onChunk(Buffer.from(sse(chunk('B'))), 105)
    const result = tap.finish()
    assert.equal(result.firstTokenAtMs, 5)
    assert.equal(result.contentEvents, 2)
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

  test('counts the body in bytes as they came, not characters', () => {
    const tap = createResponseTap('openai.chat', true)
    const body = `${sse(chunk('héllo 🙂'))}data: [DONE]\n\n`
    const bytes = Buffer.from(body)
    // Split inside the emoji: the bytes add up however the chunks cut the text.
    const cut = bytes.indexOf(0xf0) + 2
    tap.onChunk(bytes.subarray(0, cut), 1)
    tap.onChunk(bytes.subarray(cut), 2)
    assert.equal(tap.finish().bodyBytes, bytes.length)
    assert.ok(bytes.length > body.length)
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
      bodyBytes: Buffer.byteLength(body),
      usage: { promptTokens: 5, completionTokens: 9 },
    })
  })

  describe('SSE framing', () => {
    const events = [
      'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}',
      'data: {"choices":[{"delta":{"content":"Hi"}}]}',
      'data: {"choices":[{"delta":{"content":"!"}}]}',
      'data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2}}',
      'data: [DONE]',
    ]
    for (const [name, eol] of [
      ['LF', '\n'],
      ['CRLF (sse-starlette)', '\r\n'],
      ['CR', '\r'],
    ] as const) {
      test(`reads events whose lines end with ${name}, in one chunk or one character at a time`, () => {
        const stream = events.map((e) => e + eol + eol).join('')
        const whole = createResponseTap('openai.chat', true)
        whole.onChunk(Buffer.from(stream), 5)
        const bytewise = createResponseTap('openai.chat', true)
        for (let i = 0; i < stream.length; i++) bytewise.onChunk(Buffer.from(stream[i]!), i)
        for (const tap of [whole, bytewise]) {
          const result = tap.finish()
          assert.equal(result.contentEvents, 2)
          assert.deepEqual(result.usage, { promptTokens: 10, completionTokens: 2 })
        }
      })
    }

    test('a CRLF split across chunks is one line end, not an empty line that ends the event', () => {
      const tap = createResponseTap('openai.chat', true)
      // One event in two data lines, joined by a line feed: only whole is it a content event.
      tap.onChunk(Buffer.from('data: {"choices":[{"delta":{"content"\r'), 1)
      tap.onChunk(Buffer.from('\ndata: :"x"}}]}\r'), 2)
      assert.equal(tap.firstTokenAtMs, undefined)
      tap.onChunk(Buffer.from('\n\r\n'), 3)
      assert.equal(tap.firstTokenAtMs, 3)
      assert.equal(tap.finish().contentEvents, 1)
    })

    test('ignores comments, event names and other fields, and the space after the colon is optional', () => {
      const tap = createResponseTap('openai.chat', true)
      tap.onChunk(Buffer.from(': keep-alive\n\nevent: x\nid: 1\nretry: 5\n\n'), 1)
      assert.equal(tap.firstTokenAtMs, undefined)
      tap.onChunk(Buffer.from('data:{"choices":[{"delta":{"content":"a"}}]}\n\n'), 2)
      assert.equal(tap.firstTokenAtMs, 2)
    })

    test('reads JSON written with spaces after colons (Python json.dumps)', () => {
      const tap = createResponseTap('openai.chat', true)
      tap.onChunk(Buffer.from('data: {"choices": [{"delta": {"content": ""}}]}\r\n\r\n'), 1)
      tap.onChunk(Buffer.from('data: {"choices": [{"delta": {"content": "x"}}]}\r\n\r\n'), 2)
      tap.onChunk(
        Buffer.from(
          'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}\r\n\r\n',
        ),
        3,
      )
      assert.deepEqual(tap.finish(), {
        firstTokenAtMs: 2,
        lastTokenAtMs: 2,
        contentEvents: 1,
        bodyBytes: 183,
        usage: { promptTokens: 4, completionTokens: 1 },
      })
    })
  })

  describe('generated tokens other than text count as the first token', () => {
    const cases: [string, LlmApi, string[]][] = [
      [
        'an OpenAI tool-call-only stream',
        'openai.chat',
        [
          '{"choices":[{"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}}]}',
          '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}]}}]}',
        ],
      ],
      [
        'vLLM / DeepSeek reasoning_content',
        'openai.chat',
        [
          '{"choices":[{"delta":{"reasoning_content":"Let"}}]}',
          '{"choices":[{"delta":{"reasoning_content":" me"}}]}',
        ],
      ],
      [
        'a reasoning field',
        'openai.chat',
        [
          '{"choices":[{"delta":{"reasoning":"Let"}}]}',
          '{"choices":[{"delta":{"reasoning":" me"}}]}',
        ],
      ],
      [
        'an OpenAI audio reply: its transcript and its audio',
        'openai.chat',
        [
          '{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"audio":{"id":"audio_1","transcript":"Hello"}}}]}',
          '{"choices":[{"index":0,"delta":{"audio":{"data":"UklGRiQAAABXQVZF"}}}]}',
        ],
      ],
      [
        'Anthropic input_json_delta',
        'anthropic.messages',
        [
          '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"a"}}',
          '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\":1}"}}',
        ],
      ],
      [
        'Anthropic thinking_delta',
        'anthropic.messages',
        [
          '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let"}}',
          '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" me"}}',
        ],
      ],
      [
        'Responses API function-call arguments',
        'openai.responses',
        [
          '{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":0,"delta":"{\\"a"}',
          '{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":0,"delta":"\\":1}"}',
        ],
      ],
      [
        'an Anthropic tool call, named at its block start',
        'anthropic.messages',
        [
          '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"weather","input":{}}}',
          '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"a"}}',
        ],
      ],
      [
        'a Responses API function call, named when its item is added',
        'openai.responses',
        [
          '{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc","call_id":"c","name":"weather","arguments":""}}',
          '{"type":"response.function_call_arguments.delta","item_id":"fc","output_index":0,"delta":"{\\"a"}',
        ],
      ],
    ]
    for (const [name, api, data] of cases) {
      test(name, () => {
        const tap = createResponseTap(api, true)
        for (const [i, d] of data.entries()) {
          tap.onChunk(Buffer.from(`data: ${d}\n\n`), 10 + i)
          if (i === 0) assert.equal(tap.firstTokenAtMs, 10)
        }
        const result = tap.finish()
        assert.equal(result.contentEvents, 2)
        assert.equal(result.lastTokenAtMs, 11)
      })
    }

    test('empty deltas, block starts and signatures are not tokens', () => {
      const tap = createResponseTap('anthropic.messages', true)
      for (const d of [
        '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}',
        '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}',
        '{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":""}}',
      ])
        tap.onChunk(Buffer.from(`data: ${d}\n\n`), 1)
      assert.equal(tap.finish().contentEvents, 0)
    })

    test('an audio reply’s id and expiry are not tokens', () => {
      const tap = createResponseTap('openai.chat', true)
      for (const d of [
        '{"choices":[{"index":0,"delta":{"role":"assistant","audio":{"id":"audio_1","transcript":""}}}]}',
        '{"choices":[{"index":0,"delta":{"audio":{"expires_at":1739707387}}}]}',
      ])
        tap.onChunk(Buffer.from(`data: ${d}\n\n`), 1)
      assert.equal(tap.finish().contentEvents, 0)
    })
  })

  describe('usage', () => {
    test('an Anthropic prompt is input_tokens plus cache reads and writes, streamed', () => {
      const tap = createResponseTap('anthropic.messages', true)
      const start = {
        type: 'message_start',
        message: {
          usage: {
            input_tokens: 4,
            cache_read_input_tokens: 9000,
            cache_creation_input_tokens: 300,
            output_tokens: 1,
          },
        },
      }
      tap.onChunk(Buffer.from(`event: message_start\n${sse(start)}`), 1)
      tap.onChunk(
        Buffer.from(
          `event: message_delta\n${sse({ type: 'message_delta', usage: { output_tokens: 12 } })}`,
        ),
        2,
      )
      assert.deepEqual(tap.finish().usage, { promptTokens: 9304, completionTokens: 12 })
    })

    test('an Anthropic prompt is input_tokens plus cache reads and writes, in a body', () => {
      const tap = createResponseTap('anthropic.messages', false)
      const body = {
        type: 'message',
        content: [{ type: 'text', text: 'hi' }],
        usage: {
          input_tokens: 4,
          cache_read_input_tokens: 9000,
          cache_creation_input_tokens: 0,
          output_tokens: 12,
        },
      }
      tap.onChunk(Buffer.from(JSON.stringify(body)), 1)
      assert.deepEqual(tap.finish().usage, { promptTokens: 9004, completionTokens: 12 })
    })

    test('a count that is no token count (negative, fractional, unsafe, a string) reads as absent', () => {
      for (const junk of [-990, 0.5, 1e300, '7', null]) {
        const tap = createResponseTap('anthropic.messages', false)
        const usage = { input_tokens: 1000, cache_read_input_tokens: junk, output_tokens: junk }
        tap.onChunk(Buffer.from(JSON.stringify({ content: [], usage })), 1)
        assert.deepEqual(
          tap.finish().usage,
          { promptTokens: 1000, completionTokens: 0 },
          `${JSON.stringify(junk)}`,
        )
      }
      // JSON's 1e999 parses as Infinity: no usage at all, rather than an infinite prompt.
      const tap = createResponseTap('openai.chat', false)
      tap.onChunk(Buffer.from('{"usage":{"prompt_tokens":1e999,"completion_tokens":-5}}'), 1)
      assert.equal(tap.finish().usage, undefined)
    })

    test('a usage object inside generated content adds nothing to the response’s own', () => {
      // A tool call's input is generated text as an object: the model may write a usage into it.
      const body = {
        content: [
          { type: 'tool_use', name: 'f', input: { usage: { cache_read_input_tokens: 99_999 } } },
        ],
        usage: { input_tokens: 12, output_tokens: 3 },
      }
      for (const piece of [JSON.stringify(body).length, 7]) {
        const tap = createResponseTap('anthropic.messages', false)
        const text = JSON.stringify(body)
        for (let at = 0; at < text.length; at += piece)
          tap.onChunk(Buffer.from(text.slice(at, at + piece)), 1)
        assert.deepEqual(tap.finish().usage, { promptTokens: 12, completionTokens: 3 })
      }
    })

    test('OpenAI cached tokens are a share of prompt_tokens, not added to it', () => {
      const tap = createResponseTap('openai.chat', false)
      const usage = {
        prompt_tokens: 2000,
        completion_tokens: 5,
        prompt_tokens_details: { cached_tokens: 1920 },
      }
      tap.onChunk(Buffer.from(JSON.stringify({ choices: [], usage })), 1)
      assert.deepEqual(tap.finish().usage, { promptTokens: 2000, completionTokens: 5 })
    })

    test('reads a streamed Responses API usage from response.completed', () => {
      const tap = createResponseTap('openai.responses', true)
      const output = [{ type: 'message', content: [{ type: 'output_text', text: 'Hi' }] }]
      tap.onChunk(
        Buffer.from(
          `event: response.created\n${sse({ type: 'response.created', response: { id: 'r', usage: null } })}`,
        ),
        1,
      )
      tap.onChunk(
        Buffer.from(
          `event: response.output_text.delta\n${sse({ type: 'response.output_text.delta', delta: 'Hi' })}`,
        ),
        2,
      )
      tap.onChunk(
        Buffer.from(
          `event: response.output_text.done\n${sse({ type: 'response.output_text.done', text: 'Hi' })}`,
        ),
        3,
      )
      const completed = {
        type: 'response.completed',
        response: {
          id: 'r',
          output,
          usage: { input_tokens: 1200, output_tokens: 57, total_tokens: 1257 },
        },
      }
      tap.onChunk(Buffer.from(`event: response.completed\n${sse(completed)}`), 4)
      assert.deepEqual(tap.finish(), {
        firstTokenAtMs: 2,
        lastTokenAtMs: 2,
        contentEvents: 1,
        bodyBytes: 506,
        usage: { promptTokens: 1200, completionTokens: 57 },
      })
    })

    test('reads a Responses API body', () => {
      const tap = createResponseTap('openai.responses', false)
      const body = { id: 'r', output: [], usage: { input_tokens: 30, output_tokens: 7 } }
      tap.onChunk(Buffer.from(JSON.stringify(body)), 1)
      assert.deepEqual(tap.finish().usage, { promptTokens: 30, completionTokens: 7 })
    })

    test('reads usage at the end of a body far larger than any buffer', () => {
      const tap = createResponseTap('openai.embeddings', false)
      const embedding = Array.from({ length: 1536 }, () => 0.0123456789)
      const data = Array.from({ length: 64 }, (_, index) => ({
        object: 'embedding',
        index,
        embedding,
      }))
      const body = JSON.stringify({
        object: 'list',
        data,
        model: 'e',
        usage: { prompt_tokens: 5000, total_tokens: 5000 },
      })
      assert.ok(body.length > 1 << 20)
      for (let i = 0; i < body.length; i += 65_536)
        tap.onChunk(Buffer.from(body.slice(i, i + 65_536)), i)
      assert.deepEqual(tap.finish().usage, { promptTokens: 5000, completionTokens: 0 })
    })

    test('reads usage from a streamed event far larger than any buffer', () => {
      const tap = createResponseTap('openai.responses', true)
      const text = 'x'.repeat(2 << 20)
      const completed = {
        type: 'response.completed',
        response: {
          output: [{ content: [{ text }] }],
          usage: { input_tokens: 9, output_tokens: 8 },
        },
      }
      const stream = sse(completed)
      for (let i = 0; i < stream.length; i += 65_536)
        tap.onChunk(Buffer.from(stream.slice(i, i + 65_536)), 1)
      assert.deepEqual(tap.finish().usage, { promptTokens: 9, completionTokens: 8 })
    })
  })
})
