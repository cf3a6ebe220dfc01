import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  completionPrompt,
  contentText,
  flattenChat,
  MAX_OPAQUE_ITEM_CHARS,
} from '../../../src/llm/chat-template.ts'
import { MEDIA_PART_TOKENS, parseLlmBody, toLlmRequest } from '../../../src/llm/llm-body.ts'

describe('chat template flattening', () => {
  test('leaves plain text conversations exactly as before', () => {
    assert.equal(
      flattenChat(
        [
          { role: 'user', content: [{ type: 'text', text: 'a' }] },
          { role: 'assistant', content: 'b' },
        ],
        'S',
      ),
      '<|system|>\nS\n<|user|>\na\n<|assistant|>\nb\n',
    )
  })

  test('writes media as a marker hashed from what identifies it, in every API’s shape', () => {
    const png = (byte: string) => `data:image/png;base64,${byte.repeat(40_000)}`
    const openAi = (url: string) =>
      flattenChat([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this image?' },
            { type: 'image_url', image_url: { url } },
          ],
        },
      ])
    // Engines key their prefix caches on the image: different images must not look alike.
    assert.notEqual(openAi(png('A')), openAi(png('B')))
    assert.equal(openAi(png('A')), openAi(png('A')))
    assert.ok(openAi(png('A')).length < 200, 'the bytes are hashed, not copied')
    const anthropic = (data: string) =>
      flattenChat([
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data } },
            { type: 'text', text: 'Describe' },
          ],
        },
      ])
    assert.notEqual(anthropic('QUFB'), anthropic('QkJC'))
    const responses = (url: string) =>
      flattenChat([{ role: 'user', content: [{ type: 'input_image', image_url: url }] }])
    assert.notEqual(responses('https://a/1.png'), responses('https://a/2.png'))
    for (const part of [
      { type: 'input_audio', input_audio: { data: 'UklGR', format: 'wav' } },
      { type: 'file', file: { file_id: 'file-1' } },
      { type: 'input_file', file_url: 'https://a/doc.pdf' },
      { type: 'document', source: { type: 'url', url: 'https://a/doc.pdf' } },
      { type: 'video_url', video_url: { url: 'https://a/v.mp4' } },
    ]) {
      assert.match(flattenChat([{ role: 'user', content: [part] }]), /<\|media \w+ #\w+\|>/)
    }
    // A text document is its text.
    const document = flattenChat([
      { role: 'user', content: [{ type: 'document', source: { type: 'text', data: 'Terms.' } }] },
    ])
    assert.match(document, /<\|document\|>\nTerms\./)
  })

  test('counts media parts as they are flattened, not markers a client typed into its text', () => {
    const parsed = parseLlmBody('openai.chat', {
      model: 'm',
      messages: [{ role: 'user', content: '<|media image #x|> '.repeat(1000) }],
    })
    assert.ok(parsed.ok)
    assert.equal(parsed.value.mediaParts, undefined)
    const llm = toLlmRequest('openai.chat', parsed.value, 'm', undefined)
    assert.ok(llm.promptTokens < 20_000, `${llm.promptTokens} tokens`)
  })

  test('counts a prompt’s media parts as tokens, and no longer as text', () => {
    const parsed = parseLlmBody('openai.chat', {
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image_url', image_url: { url: 'https://a/1.png' } },
            { type: 'image_url', image_url: { url: 'https://a/2.png' } },
          ],
        },
      ],
    })
    assert.ok(parsed.ok)
    assert.equal(parsed.value.mediaParts, 2)
    const llm = toLlmRequest('openai.chat', parsed.value, 'm', undefined)
    assert.ok(
      llm.promptTokens >= 2 * MEDIA_PART_TOKENS && llm.promptTokens < 2 * MEDIA_PART_TOKENS + 50,
    )
  })

  test('writes OpenAI tool definitions, assistant tool calls and tool results into the prompt', () => {
    const tools = [
      { type: 'function', function: { name: 'weather', parameters: { type: 'object' } } },
    ]
    const text = flattenChat(
      [
        { role: 'user', content: 'Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'weather', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '21C' },
      ],
      undefined,
      tools,
    )
    assert.equal(
      text,
      `<|tools|>\n${JSON.stringify(tools)}\n<|user|>\nParis?\n` +
        '<|assistant|>\n<|tool_call|>weather\n{"city":"Paris"}\n<|tool|>\n21C\n',
    )
  })

  test('gives two conversations that differ only in a tool result different text', () => {
    const anthropic = (result: string) => [
      { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: result }] },
    ]
    assert.notEqual(flattenChat(anthropic('1')), flattenChat(anthropic('2')))
    const responses = (output: string) => [{ type: 'function_call_output', call_id: 'c', output }]
    assert.notEqual(flattenChat(responses('1')), flattenChat(responses('2')))
  })

  test('turns Responses function_call and function_call_output items into turns, not empty user turns', () => {
    const text = flattenChat([
      { role: 'user', content: [{ type: 'input_text', text: 'q' }] },
      { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"k":1}' },
      { type: 'function_call_output', call_id: 'c1', output: 'found' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'done' }] },
    ])
    assert.equal(
      text,
      '<|user|>\nq\n<|assistant|>\n<|tool_call|>lookup\n{"k":1}\n<|tool|>\nfound\n' +
        '<|assistant|>\ndone\n',
    )
  })

  test('writes Anthropic tool_use inputs and tool_result contents, string or blocks', () => {
    const text = flattenChat(
      [
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'tu_1', name: 'weather', input: { city: 'Oslo', days: 2 } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: '3C' }] },
            { type: 'tool_result', tool_use_id: 'tu_2', content: 'boom', is_error: true },
          ],
        },
      ],
      'Sys',
      [{ name: 'weather', input_schema: { type: 'object' } }],
    )
    assert.equal(
      text,
      '<|system|>\nSys\n<|tools|>\n[{"name":"weather","input_schema":{"type":"object"}}]\n' +
        '<|assistant|>\nChecking.\n<|tool_call|>weather\n{"city":"Oslo","days":2}\n' +
        '<|user|>\n<|tool_result|>\n3C\n<|tool_result error|>\nboom\n',
    )
  })

  test('is deterministic: the same request gives the same text, keys in the order sent', () => {
    const build = () =>
      flattenChat([
        { role: 'assistant', content: [{ type: 'tool_use', name: 'f', input: { b: 1, a: 2 } }] },
      ])
    assert.equal(build(), build())
    assert.match(build(), /\{"b":1,"a":2\}/)
  })

  test('keeps contentText to text parts for system prompts', () => {
    assert.equal(
      contentText([
        { type: 'text', text: 'x' },
        { type: 'text', text: 'y' },
      ]),
      'x\ny',
    )
  })
})

/** `length` base64 characters, the same for the same seed. */
function base64(seed: number, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  let out = ''
  let state = seed
  while (out.length < length) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
    out += alphabet[state >>> 26]
  }
  return out
}

describe('opaque Responses input items', () => {
  const screenshot = (seed: number) => ({
    type: 'computer_call_output',
    call_id: 'call_7',
    output: {
      type: 'computer_screenshot',
      image_url: `data:image/png;base64,${base64(seed, 2_000_000)}`,
    },
  })
  const generated = (seed: number) => ({
    type: 'image_generation_call',
    id: 'ig_42',
    status: 'completed',
    result: base64(seed, 1_500_000),
  })
  const input = (...items: unknown[]) => [{ role: 'user', content: 'Click OK' }, ...items]

  test('write a screenshot or a generated image as its length and a hash, not its base64', () => {
    for (const item of [screenshot(1), generated(1)]) {
      const text = flattenChat(input(item))
      assert.ok(text.length < 400, `${item.type}: ${text.length} characters`)
      assert.ok(text.startsWith(`<|user|>\nClick OK\n<|${item.type}|>\n{"type":"${item.type}"`))
    }
    assert.match(
      flattenChat(input(screenshot(1))),
      /"call_id":"call_7","output":\{"type":"computer_screenshot","image_url":"<\|blob image\/png 2000022 chars #[0-9a-z]+\|>"\}/,
    )
    assert.match(flattenChat(input(generated(1))), /"id":"ig_42",.*"result":"<\|blob 1500000 chars/)
  })

  test('stay deterministic and tell different images apart', () => {
    assert.equal(flattenChat(input(screenshot(1))), flattenChat(input(screenshot(1))))
    assert.notEqual(flattenChat(input(screenshot(1))), flattenChat(input(screenshot(2))))
    assert.notEqual(flattenChat(input(generated(1))), flattenChat(input(generated(2))))
  })

  test('keep short ids and ordinary text as sent', () => {
    const item = { type: 'web_search_call', id: 'ws_1', action: { query: 'aya load balancer' } }
    assert.equal(flattenChat([item]), `<|web_search_call|>\n${JSON.stringify(item)}\n`)
  })

  test('contribute at most MAX_OPAQUE_ITEM_CHARS of text each, plus their length and hash', () => {
    const words = (tail: string) => ({
      type: 'reasoning',
      summary: [{ type: 'summary_text', text: `${'a long thought '.repeat(20_000)}${tail}` }],
    })
    const one = flattenChat([words('one')])
    const two = flattenChat([words('two')])
    assert.ok(one.length < MAX_OPAQUE_ITEM_CHARS + 100, `${one.length} characters`)
    assert.notEqual(one, two, 'a difference past the cap still shows in the hash')
    assert.equal(one, flattenChat([words('one')]))
  })

  test('keep the prompt-token estimate of a /v1/responses body to the text', () => {
    const parsed = parseLlmBody('openai.responses', {
      model: 'm',
      input: input(screenshot(3), generated(3)),
    })
    assert.ok(parsed.ok)
    assert.ok(parsed.value.promptText.length < 800, `${parsed.value.promptText.length} characters`)
  })

  test('count the screenshots and images inside them as media parts, like input_image', () => {
    const byFileId = {
      type: 'computer_call_output',
      call_id: 'call_8',
      output: { type: 'computer_screenshot', file_id: 'file_9' },
    }
    const media = { parts: 0 }
    flattenChat(
      input(screenshot(4), byFileId, { type: 'web_search_call', id: 'ws_1' }),
      undefined,
      undefined,
      media,
    )
    assert.equal(media.parts, 2)
    const parsed = parseLlmBody('openai.responses', { model: 'm', input: input(screenshot(4)) })
    assert.ok(parsed.ok)
    assert.equal(parsed.value.mediaParts, 1)
  })
})

describe('completion prompts', () => {
  test('keeps strings and string arrays as text, with no exact count', () => {
    assert.deepEqual(completionPrompt('hi'), { text: 'hi', tokens: undefined })
    assert.deepEqual(completionPrompt(['a', 'b']), {
      text: 'a\nb',
      tokens: undefined,
      prompts: 2,
    })
  })

  test('counts token-id prompts exactly and writes them as fixed-width text', () => {
    assert.deepEqual(completionPrompt([1, 2, 36]), { text: '000100020010', tokens: 3 })
    assert.deepEqual(completionPrompt([[101, 102], [7]]), {
      text: '002t002u\n0007',
      tokens: 3,
      prompts: 2,
    })
  })

  test('shares a text prefix exactly when the token ids share a prefix', () => {
    const a = completionPrompt([5, 6, 7, 8]).text
    const b = completionPrompt([5, 6, 7, 9]).text
    assert.ok(a.startsWith(completionPrompt([5, 6, 7]).text))
    assert.notEqual(a, b)
  })

  test('gives no exact count to a batch mixing text and token ids', () => {
    assert.deepEqual(completionPrompt(['a', [1]]), {
      text: 'a\n0001',
      tokens: undefined,
      prompts: 2,
    })
  })

  test('joins a batch one prompt per line, whatever mix of text, token ids and junk it holds', () => {
    const batch = [[1, 2], [3], 'a', [4], {}, [5], [], 'b', 'c', [36 ** 4], null]
    assert.deepEqual(completionPrompt(batch), {
      text: ['00010002', '0003', 'a', '0004', '0005', '', 'b', 'c', '{10000}'].join('\n'),
      tokens: undefined,
      prompts: batch.length,
    })
  })
})
