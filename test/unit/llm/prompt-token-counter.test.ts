import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createPromptTokenCounter,
  loadGptTokenizerEncoding,
  openAiEncodingFor,
  type TokenizerEncoding,
} from '../../../src/llm/prompt-token-counter.ts'
import { createSeededRandom, randomInt } from '../../../src/util/random.ts'

const WORDS = [
  'the',
  'router',
  'prefill',
  'decode',
  'cache',
  'replica',
  'tokenizer',
  'léger',
  'über',
  'request',
  'Σ',
  'latency',
  '{"id":',
  '42,',
  'function',
  'return',
  '=>',
  'naïve',
  'x',
  '2026',
]

/** Mixed prose, numbers and code-like fragments, reproducible by seed. */
function mixedText(chars: number, seed: number): string {
  const random = createSeededRandom(seed)
  let text = ''
  while (text.length < chars) {
    text += WORDS[randomInt(random, WORDS.length)]
    text += randomInt(random, 9) === 0 ? '.\n' : ' '
  }
  return text.slice(0, chars)
}

describe('prompt token counter', () => {
  it('counts OpenAI model names with their real tokenizer', () => {
    const counter = createPromptTokenCounter()
    // Counts from OpenAI's cookbook "How to count tokens with tiktoken".
    assert.equal(counter.count('gpt-4o-mini', 'お誕生日おめでとう'), 8)
    assert.equal(counter.count('gpt-4', 'お誕生日おめでとう'), 9)
    assert.equal(counter.count('gpt-3.5-turbo', 'tiktoken is great!'), 6)
    assert.equal(counter.count('o3-mini', 'antidisestablishmentarianism'), 6)
  })

  it('maps model names to tokenizers by family, through provider and fine-tune prefixes', () => {
    const cases: [string, TokenizerEncoding | undefined][] = [
      ['gpt-4o', 'o200k_base'],
      ['gpt-4o-mini-2024-07-18', 'o200k_base'],
      ['openai/gpt-4.1-nano', 'o200k_base'],
      ['ft:gpt-4o-mini:acme::abc123', 'o200k_base'],
      ['o1', 'o200k_base'],
      ['o4-mini', 'o200k_base'],
      ['gpt-5', 'o200k_base'],
      ['GPT-4-Turbo', 'cl100k_base'],
      ['gpt-3.5-turbo-0125', 'cl100k_base'],
      ['text-embedding-3-small', 'cl100k_base'],
      ['meta-llama/Llama-3.1-8B-Instruct', undefined],
      ['Qwen/Qwen2.5-7B', undefined],
      ['omni-llama', undefined],
      ['o1x', undefined],
    ]
    for (const [model, encoding] of cases) {
      assert.equal(openAiEncodingFor(model), encoding, model)
    }
  })

  it('counts special-token strings in user text as text instead of throwing', () => {
    const counter = createPromptTokenCounter()
    assert.ok(counter.count('gpt-4o', 'say <|endoftext|> please') > 3)
  })

  it('estimates other models at 4 characters per token before any usage is seen', () => {
    const counter = createPromptTokenCounter()
    assert.equal(counter.count('llama-3-8b', 'a'.repeat(400)), 100)
    assert.equal(counter.count('llama-3-8b', 'abc'), 1)
    assert.equal(counter.count('llama-3-8b', ''), 0)
    assert.equal(counter.charsPerToken('never-seen'), 4)
  })

  it('converges toward the characters per token that upstreams report', () => {
    const counter = createPromptTokenCounter()
    const random = createSeededRandom(7)
    for (let i = 0; i < 300; i++) {
      const chars = 500 + randomInt(random, 20_000)
      // A true ratio of 3 with ±10 % noise per request, as template overhead and content vary.
      const tokens = Math.round((chars / 3) * (0.9 + 0.2 * random()))
      counter.observe('qwen', chars, tokens)
    }
    assert.ok(
      Math.abs(counter.charsPerToken('qwen') - 3) < 0.06,
      `${counter.charsPerToken('qwen')}`,
    )
    const estimate = counter.count('qwen', 'x'.repeat(30_000))
    assert.ok(Math.abs(estimate - 10_000) < 200, `${estimate}`)
  })

  it('keeps each model calibrated on its own', () => {
    const counter = createPromptTokenCounter()
    for (let i = 0; i < 200; i++) {
      counter.observe('code-model', 4_000, 2_000)
      counter.observe('prose-model', 5_000, 1_000)
    }
    assert.ok(Math.abs(counter.charsPerToken('code-model') - 2) < 0.05)
    assert.ok(Math.abs(counter.charsPerToken('prose-model') - 5) < 0.05)
  })

  it('follows a model whose ratio changes, within a few half-lives', () => {
    const counter = createPromptTokenCounter({ halfLifeSamples: 32 })
    for (let i = 0; i < 200; i++) counter.observe('m', 4_000, 1_000)
    for (let i = 0; i < 200; i++) counter.observe('m', 3_000, 1_500)
    assert.ok(Math.abs(counter.charsPerToken('m') - 2) < 0.05, `${counter.charsPerToken('m')}`)
  })

  it('bounds how far one outlandish report can move the ratio', () => {
    const counter = createPromptTokenCounter()
    for (let i = 0; i < 200; i++) counter.observe('m', 4_000, 1_000)
    // An image-heavy prompt: almost no text, thousands of tokens.
    counter.observe('m', 40, 20_000)
    assert.ok(counter.charsPerToken('m') > 3.8, `${counter.charsPerToken('m')}`)
    counter.observe('m', 0, 100)
    counter.observe('m', 100, 0)
    assert.ok(Number.isFinite(counter.charsPerToken('m')))
  })

  it('leaves exact counts alone when usage is reported for a tokenised model', () => {
    const counter = createPromptTokenCounter()
    const before = counter.count('gpt-4o', 'hello world')
    for (let i = 0; i < 100; i++) counter.observe('gpt-4o', 11, 20)
    assert.equal(counter.count('gpt-4o', 'hello world'), before)
  })

  it('forgets the least recently used model beyond maxModels', () => {
    const counter = createPromptTokenCounter({ maxModels: 4 })
    for (let i = 0; i < 100; i++) counter.observe('first', 2_000, 1_000)
    assert.ok(counter.charsPerToken('first') < 2.2)
    for (let m = 0; m < 50; m++) {
      for (let i = 0; i < 8; i++) counter.observe(`model-${m}`, 4_000, 1_000)
    }
    assert.ok(counter.trackedModels <= 4)
    assert.equal(counter.charsPerToken('first'), 4)
  })

  it('keeps a model’s learned ratio through a flood of one-off model names', () => {
    const counter = createPromptTokenCounter()
    for (let i = 0; i < 200; i++) counter.observe('qwen', 10_000, 5_000)
    const learned = counter.charsPerToken('qwen')
    assert.ok(learned < 2.1, `${learned}`)
    // With a wildcard model, each request may name a new model.
    for (let i = 0; i < 2_000; i++) {
      counter.count(`made-up-${i}`, 'hello')
      counter.observe(`made-up-${i}`, 10, 5)
    }
    assert.equal(counter.charsPerToken('qwen'), learned)
    assert.ok(counter.trackedModels <= 256)
    assert.equal(counter.count('qwen', 'x'.repeat(1000)), Math.ceil(1000 / learned))
  })

  it('keeps no state for a model it only counted', () => {
    const counter = createPromptTokenCounter()
    for (let i = 0; i < 1_000; i++) counter.count(`made-up-${i}`, 'hello world')
    assert.equal(counter.trackedModels, 0)
    assert.equal(counter.count('made-up-1', 'x'.repeat(400)), 100)
  })

  it('samples long prompts at most maxExactChars and stays within a few percent', () => {
    const tokenised: number[] = []
    const real = loadGptTokenizerEncoding('o200k_base')
    const counter = createPromptTokenCounter(
      {},
      {
        loadEncoding: (encoding) => {
          const inner = encoding === 'o200k_base' ? real : loadGptTokenizerEncoding(encoding)
          return {
            countTokens: (text, options) => {
              tokenised.push(text.length)
              return inner.countTokens(text, options)
            },
          }
        },
      },
    )
    const exact = createPromptTokenCounter({ maxExactChars: Number.POSITIVE_INFINITY })
    for (const seed of [1, 2, 3]) {
      const text = mixedText(50_000, seed)
      tokenised.length = 0
      const sampled = counter.count('gpt-4o', text)
      const truth = exact.count('gpt-4o', text)
      assert.ok(
        tokenised.reduce((a, b) => a + b, 0) <= 4096,
        `tokenised ${tokenised.reduce((a, b) => a + b, 0)} chars`,
      )
      assert.ok(Math.abs(sampled / truth - 1) < 0.05, `sampled ${sampled}, exact ${truth}`)
    }
  })

  it('hands BPE no whitespace-free run longer than 256 characters, and counts within a token a cut', () => {
    const lengths: number[] = []
    const real = loadGptTokenizerEncoding('o200k_base')
    const counter = createPromptTokenCounter(
      {},
      {
        loadEncoding: () => ({
          countTokens: (text, options) => {
            lengths.push(Math.max(0, ...text.split(/[ \n\t\r]/).map((run) => run.length)))
            return real.countTokens(text, options)
          },
        }),
      },
    )
    const base64ish = 'QmFzZTY0IGlzIGEgZ3JvdXAgb2Yg'.repeat(40)
    const text = `Decode this: ${base64ish} and tell me what it says.`
    const counted = counter.count('gpt-4o', text)
    assert.ok(Math.max(...lengths) <= 256, `longest run tokenised: ${Math.max(...lengths)}`)
    const truth = real.countTokens(text)
    assert.ok(
      Math.abs(counted - truth) <= Math.ceil(base64ish.length / 256) + 1,
      `${counted} vs ${truth}`,
    )
    // Prose is counted whole, exactly as before.
    lengths.length = 0
    const prose = mixedText(3000, 1)
    assert.equal(counter.count('gpt-4o', prose), real.countTokens(prose))
    assert.equal(lengths.length, 1)
  })

  it('loads a tokenizer once, on first use, and never for estimated models', () => {
    const loads: string[] = []
    const counter = createPromptTokenCounter(
      {},
      {
        loadEncoding: (encoding) => {
          loads.push(encoding)
          return { countTokens: (text) => text.length }
        },
      },
    )
    counter.count('llama', 'hello')
    assert.deepEqual(loads, [])
    counter.warmUp('gpt-4o')
    counter.count('gpt-4o', 'hello')
    counter.count('gpt-4.1', 'hello')
    counter.count('gpt-4', 'hello')
    assert.deepEqual(loads, ['o200k_base', 'cl100k_base'])
  })

  it('estimates every model when tokenizers are turned off', () => {
    const counter = createPromptTokenCounter({ useTokenizers: false })
    assert.equal(counter.encodingFor('gpt-4o'), undefined)
    assert.equal(counter.count('gpt-4o', 'a'.repeat(400)), 100)
  })
})
