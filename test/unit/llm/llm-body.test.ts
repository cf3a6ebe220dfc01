import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { llmApiFor, parseLlmBody, toLlmRequest } from '../../../src/llm/llm-body.ts'
import type { LlmApi } from '../../../src/llm/llm-request.ts'

describe('LLM request bodies', () => {
  test('maps each supported path to its API, POST only', () => {
    assert.equal(llmApiFor('POST', '/v1/chat/completions'), 'openai.chat')
    assert.equal(llmApiFor('POST', '/v1/completions'), 'openai.completions')
    assert.equal(llmApiFor('POST', '/v1/responses'), 'openai.responses')
    assert.equal(llmApiFor('POST', '/v1/embeddings'), 'openai.embeddings')
    assert.equal(llmApiFor('POST', '/v1/messages'), 'anthropic.messages')
    assert.equal(llmApiFor('GET', '/v1/chat/completions'), undefined)
    assert.equal(llmApiFor('POST', '/v1/unknown'), undefined)
  })

  test('flattens every chat message with its role, not just the first', () => {
    const parsed = parseLlmBody('openai.chat', {
      model: 'm',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: [{ type: 'text', text: 'U1' }] },
        { role: 'assistant', content: 'A' },
      ],
      max_tokens: 7,
      stream: true,
    })
    assert.deepEqual(parsed, {
      ok: true,
      value: {
        model: 'm',
        stream: true,
        maxTokens: 7,
        promptText: '<|system|>\nS\n<|user|>\nU1\n<|assistant|>\nA\n',
        // Text: no exact token count.
        promptTokens: undefined,
      },
    })
  })

  test('puts the Anthropic system prompt and Responses instructions first, like a chat template', () => {
    const anthropic = parseLlmBody('anthropic.messages', {
      model: 'c',
      max_tokens: 5,
      system: [{ type: 'text', text: 'Sys' }],
      messages: [{ role: 'user', content: 'Q' }],
    })
    assert.ok(anthropic.ok && anthropic.value.promptText === '<|system|>\nSys\n<|user|>\nQ\n')
    const responses = parseLlmBody('openai.responses', {
      model: 'r',
      input: 'Q',
      instructions: 'Sys',
      max_output_tokens: 9,
    })
    assert.ok(responses.ok && responses.value.promptText === '<|system|>\nSys\n<|user|>\nQ\n')
    assert.ok(responses.ok && responses.value.maxTokens === 9)
  })

  test('treats embeddings as generating nothing', () => {
    const parsed = parseLlmBody('openai.embeddings', { model: 'e', input: ['a', 'b'] })
    assert.ok(parsed.ok && parsed.value.maxTokens === 0 && parsed.value.promptText === 'a\nb')
  })

  test('reads vLLM prompt_embeds as prompts it cannot count: media parts, one per tensor', () => {
    const one = parseLlmBody('openai.completions', {
      model: 'm',
      prompt: null,
      prompt_embeds: 'QUJD',
    })
    assert.ok(one.ok)
    assert.match(one.value.promptText, /^<\|media prompt_embeds #\w+\|>$/)
    assert.equal(one.value.mediaParts, 1)
    assert.equal(one.value.sequences, undefined)
    // Each tensor and each text prompt is a prompt of the batch vLLM runs.
    const both = parseLlmBody('openai.completions', {
      model: 'm',
      prompt: 'tail',
      prompt_embeds: ['QUJD', 'REVG'],
      n: 2,
    })
    assert.ok(both.ok)
    assert.equal(both.value.mediaParts, 2)
    assert.equal(both.value.sequences, 6)
    assert.match(both.value.promptText, /\ntail$/)
    assert.notEqual(one.value.promptText, both.value.promptText.split('\n')[1])
    // Not tensors: the prompt is still required.
    for (const prompt_embeds of [5, [], [1], { a: 1 }]) {
      const parsed = parseLlmBody('openai.completions', { model: 'm', prompt_embeds })
      assert.ok(!parsed.ok && parsed.param === 'prompt', JSON.stringify(prompt_embeds))
    }
  })

  test('reads a vLLM embeddings request of messages as a chat, media and all', () => {
    const parsed = parseLlmBody('openai.embeddings', {
      model: 'e',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'https://x/cat.jpg' } },
            { type: 'text', text: 'Represent it' },
          ],
        },
      ],
    })
    assert.ok(parsed.ok)
    assert.equal(parsed.value.maxTokens, 0)
    assert.match(parsed.value.promptText, /^<\|user\|>\n<\|media image #\w+\|>\nRepresent it\n$/)
    assert.equal(parsed.value.mediaParts, 1)
    // Where both are sent, `input` is the prompt.
    const both = parseLlmBody('openai.embeddings', { model: 'e', input: 'a', messages: [] })
    assert.ok(both.ok && both.value.promptText === 'a')
  })

  test('names the bad parameter: missing model, missing messages, bad max_tokens, Anthropic max_tokens', () => {
    const cases: Array<[Parameters<typeof parseLlmBody>, string]> = [
      [['openai.chat', { messages: [] }], 'model'],
      [['openai.chat', { model: 'm' }], 'messages'],
      [['openai.chat', { model: 'm', messages: [], max_tokens: -1 }], 'max_tokens'],
      [['openai.chat', { model: 'm', messages: [], max_tokens: 1e308 }], 'max_tokens'],
      [['openai.chat', { model: 'm', messages: [], max_tokens: 2 ** 53 + 2 }], 'max_tokens'],
      [['openai.completions', { model: 'm' }], 'prompt'],
      [['anthropic.messages', { model: 'm', messages: [] }], 'max_tokens'],
    ]
    for (const [args, param] of cases) {
      const parsed = parseLlmBody(...args)
      assert.equal(parsed.ok, false)
      assert.equal(!parsed.ok && parsed.param, param)
    }
    assert.equal(parseLlmBody('openai.chat', [1, 2]).ok, false)
  })

  test('says a model sent as another type than a string is mistyped, not missing, in each API’s words', () => {
    const messageOf = (api: Parameters<typeof parseLlmBody>[0], model: unknown) => {
      const parsed = parseLlmBody(api, { model, messages: [], max_tokens: 1 })
      assert.equal(!parsed.ok && parsed.param, 'model')
      return !parsed.ok && parsed.message
    }
    assert.equal(messageOf('openai.chat', 123), "'model' must be a string, got a number")
    assert.equal(messageOf('openai.chat', ['llama']), "'model' must be a string, got an array")
    assert.equal(
      messageOf('openai.chat', { id: 'llama' }),
      "'model' must be a string, got a JSON object",
    )
    assert.equal(messageOf('openai.chat', true), "'model' must be a string, got a boolean")
    assert.equal(messageOf('anthropic.messages', 123), 'model: Input should be a valid string')
    // Absent, null or empty, it is missing.
    for (const model of [undefined, null, '']) {
      assert.equal(messageOf('openai.chat', model), 'you must provide a model parameter')
      assert.equal(messageOf('anthropic.messages', model), 'model: Field required')
    }
  })

  test('counts token-id prompts by their length, not by a tokenizer, for completions and embeddings', () => {
    const cases: Array<[Parameters<typeof parseLlmBody>, number]> = [
      [['openai.completions', { model: 'm', prompt: [1, 2, 3] }], 3],
      [
        [
          'openai.completions',
          {
            model: 'm',
            prompt: [
              [1, 2],
              [3, 4, 5],
            ],
          },
        ],
        5,
      ],
      [['openai.embeddings', { model: 'e', input: [101, 102] }], 2],
      [['openai.embeddings', { model: 'e', input: [[101], [102, 103]] }], 3],
    ]
    for (const [args, tokens] of cases) {
      const parsed = parseLlmBody(...args)
      assert.ok(parsed.ok)
      assert.equal(parsed.value.promptTokens, tokens)
      assert.ok(parsed.value.promptText.length > 0)
      const llm = toLlmRequest(args[0], parsed.value, 'm', undefined, () => 9999)
      assert.equal(llm.promptTokens, tokens)
      assert.equal(llm.promptTokensExact, true)
    }
    const text = parseLlmBody('openai.completions', { model: 'm', prompt: 'hello' })
    assert.ok(text.ok && text.value.promptTokens === undefined)
    assert.ok(
      text.ok &&
        toLlmRequest('openai.completions', text.value, 'm', undefined, () => 7).promptTokens === 7,
    )
  })

  test('reads output caps as the engines do: completions default 16, max_completion_tokens or max_tokens', () => {
    const cap = (...args: Parameters<typeof parseLlmBody>) => {
      const parsed = parseLlmBody(...args)
      assert.ok(parsed.ok)
      return parsed.value.maxTokens
    }
    assert.equal(cap('openai.completions', { model: 'm', prompt: 'x' }), 16)
    assert.equal(cap('openai.completions', { model: 'm', prompt: 'x', max_tokens: 40 }), 40)
    assert.equal(
      cap('openai.completions', { model: 'm', prompt: 'x', max_tokens: null }),
      undefined,
    )
    const chat = { model: 'm', messages: [] }
    assert.equal(cap('openai.chat', { ...chat, max_completion_tokens: null, max_tokens: 50 }), 50)
    assert.equal(cap('openai.chat', { ...chat, max_completion_tokens: 20, max_tokens: 50 }), 20)
    assert.equal(cap('openai.chat', chat), undefined)
    assert.equal(cap('openai.responses', { model: 'm', input: 'x', max_output_tokens: 30 }), 30)
    assert.equal(cap('anthropic.messages', { model: 'm', messages: [], max_tokens: 8 }), 8)
  })

  test('refuses a model name longer than 256 characters, naming the parameter', () => {
    const parsed = parseLlmBody('openai.chat', { model: 'm'.repeat(257), messages: [] })
    assert.ok(!parsed.ok)
    assert.equal(parsed.param, 'model')
    assert.ok(parseLlmBody('openai.chat', { model: 'm'.repeat(256), messages: [] }).ok)
  })

  test('reads the sequences generated: n, and best_of on completions where larger', () => {
    const sequences = (...args: Parameters<typeof parseLlmBody>) => {
      const parsed = parseLlmBody(...args)
      assert.ok(parsed.ok)
      return toLlmRequest(args[0], parsed.value, 'm', undefined).sequences
    }
    const chat = { model: 'm', messages: [] }
    assert.equal(sequences('openai.chat', chat), undefined)
    assert.equal(sequences('openai.chat', { ...chat, n: 1 }), undefined)
    assert.equal(sequences('openai.chat', { ...chat, n: 3 }), 3)
    const completion = { model: 'm', prompt: 'x' }
    assert.equal(sequences('openai.completions', { ...completion, n: 2, best_of: 5 }), 5)
    assert.equal(sequences('openai.completions', { ...completion, n: 4, best_of: null }), 4)
    // Only chat and completions generate several.
    assert.equal(sequences('openai.responses', { model: 'm', input: 'x', n: 3 }), undefined)
    // A batch of prompts runs as one request per prompt, each with its `n` sequences.
    assert.equal(sequences('openai.completions', { model: 'm', prompt: ['a', 'b', 'c'] }), 3)
    assert.equal(sequences('openai.completions', { model: 'm', prompt: [[1, 2], [3]], n: 2 }), 4)
    assert.equal(sequences('openai.completions', { model: 'm', prompt: [1, 2, 3] }), undefined)
    assert.equal(sequences('openai.embeddings', { model: 'm', input: ['a', 'b'] }), undefined)
    for (const [api, body, param] of [
      ['openai.chat', { ...chat, n: 0 }, 'n'],
      ['openai.completions', { ...completion, best_of: 1.5 }, 'best_of'],
      ['openai.chat', { ...chat, n: 129 }, 'n'],
    ] as const) {
      const parsed = parseLlmBody(api, body)
      assert.ok(!parsed.ok)
      assert.equal(parsed.param, param)
    }
  })

  test('accepts a Responses turn without input that continues a previous response', () => {
    const parsed = parseLlmBody('openai.responses', {
      model: 'm',
      previous_response_id: 'resp_1',
      instructions: 'Sys',
    })
    assert.ok(parsed.ok && parsed.value.promptText === '<|system|>\nSys\n')
    assert.equal(parseLlmBody('openai.responses', { model: 'm', input: 5 }).ok, false)
  })

  test('marks a Responses turn whose earlier turns the upstream holds, and no other', () => {
    const held = (api: LlmApi, extra: Record<string, unknown>) => {
      const parsed = parseLlmBody(api, { model: 'm', max_tokens: 1, input: 'hi', ...extra })
      assert.ok(parsed.ok)
      return toLlmRequest(api, parsed.value, 'm', undefined).promptHeldUpstream === true
    }
    assert.equal(held('openai.responses', { previous_response_id: 'resp_1' }), true)
    assert.equal(held('openai.responses', { conversation: 'conv_1' }), true)
    assert.equal(held('openai.responses', { conversation: { id: 'conv_1' } }), true)
    assert.equal(held('openai.responses', { prompt: { id: 'pmpt_1' } }), true)
    assert.equal(held('openai.responses', { previous_response_id: null }), false)
    assert.equal(held('openai.responses', {}), false)
    // A completions `prompt` is the prompt itself, not a stored one.
    assert.equal(held('openai.completions', { prompt: 'hi' }), false)
  })

  test('includes the tools of chat, Responses and Anthropic requests in the prompt text', () => {
    const tools = [{ name: 'f' }]
    for (const [api, body] of [
      ['openai.chat', { model: 'm', messages: [], tools }],
      ['openai.responses', { model: 'm', input: [], tools }],
      ['anthropic.messages', { model: 'm', messages: [], tools, max_tokens: 1 }],
    ] as const) {
      const parsed = parseLlmBody(api, body)
      assert.ok(parsed.ok && parsed.value.promptText === '<|tools|>\n[{"name":"f"}]\n', api)
    }
  })
})
