import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPromptBuilder } from '../../../src/bench/prompt-builder.ts'
import { firstWords, seededWords } from '../../../src/bench/prompt-text.ts'
import { loadTrace } from '../../../src/bench/trace-loader.ts'
import type { TraceRequest } from '../../../src/bench/trace-request.ts'
import { parseLlmBody, toLlmRequest } from '../../../src/llm/llm-body.ts'
import { chatPromptIdentity, countChatTokens } from '../../../src/sim/sim-tokenizer.ts'
import { createSeededRandom } from '../../../src/util/random.ts'
import { TRACE_FILES, tracePath } from './shared-traces.ts'

const request = (id: number, inputTokens: number, hashIds?: number[]): TraceRequest => ({
  id,
  atMs: 0,
  inputTokens,
  outputTokens: 1,
  hashIds,
})

function sample<T>(items: readonly T[], count: number, seed: number): T[] {
  const random = createSeededRandom(seed)
  return Array.from({ length: count }, () => items[Math.floor(random() * items.length)]!)
}

describe('prompt text', () => {
  it('seeds words deterministically and cuts to a word count', () => {
    assert.equal(seededWords(7, 50), seededWords(7, 50))
    assert.notEqual(seededWords(7, 50), seededWords(8, 50))
    assert.equal(seededWords(7, 50).split(' ').length, 50)
    assert.equal(seededWords(1, 0), '')
    assert.equal(firstWords('a bb ccc d', 2), 'a bb')
    assert.equal(firstWords('a bb', 5), 'a bb')
  })

  it('averages about 4 characters per token, so Aya’s estimate is close', () => {
    const words = seededWords(3, 10_000)
    const charsPerToken = (words.length + 1) / 10_000
    assert.ok(charsPerToken > 3.6 && charsPerToken < 4.4, `${charsPerToken}`)
  })
})

describe('prompt builder', () => {
  const builder = createPromptBuilder({ seed: 1, blockTokens: 8 })

  it('builds exactly inputTokens tokens under the simulator rule, with no system prompt', () => {
    for (const n of [1, 2, 7, 8, 9, 17, 100]) {
      for (const r of [request(n, n), request(n, n, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])]) {
        const messages = builder.messages(r)
        assert.equal(messages.length, 1)
        assert.equal(messages[0]!.role, 'user')
        assert.equal(countChatTokens(messages), n)
        assert.equal(chatPromptIdentity(messages).promptTokens, n)
      }
    }
  })

  it('gives equal leading hash ids byte-identical prefixes and truncates the last block', () => {
    const a = builder.content(request(1, 1 + 8 + 8 + 3, [5, 6, 7]))
    const b = builder.content(request(2, 1 + 8 + 8 + 8 + 4, [5, 6, 7, 9]))
    const c = builder.content(request(3, 1 + 8 + 8, [5, 8]))
    assert.ok(b.startsWith(a), 'a partial block is a prefix of the full one')
    const shared = builder.content(request(4, 1 + 8, [5]))
    assert.ok(c.startsWith(`${shared} `))
    assert.notEqual(c.split(' ')[8], b.split(' ')[8])
  })

  it('gives rows without hash ids unique, seeded text', () => {
    const a = builder.content(request(1, 200))
    assert.equal(a, builder.content(request(1, 200)))
    assert.notEqual(a.slice(0, 40), builder.content(request(2, 200)).slice(0, 40))
    const other = createPromptBuilder({ seed: 2, blockTokens: 8 })
    assert.notEqual(a, other.content(request(1, 200)))
  })

  it('fills a few words past the last hash id with text unique to the row', () => {
    const r = request(9, 1 + 2 * 8 + 3, [1, 2])
    assert.equal(countChatTokens(builder.messages(r)), r.inputTokens)
  })

  it('parses as an OpenAI chat body in Aya', () => {
    const r = request(1, 300, [1, 2])
    const body = { model: 'm', messages: builder.messages(r), stream: true, max_tokens: 64 }
    const parsed = parseLlmBody('openai.chat', body)
    assert.ok(parsed.ok)
    const llm = toLlmRequest('openai.chat', parsed.value, 'm', undefined)
    assert.ok(Math.abs(llm.promptTokens - 300) / 300 < 0.15, `estimate ${llm.promptTokens}`)
  })
})

describe('exact prompt token counts on sampled rows of every trace', () => {
  for (const file of Object.values(TRACE_FILES)) {
    for (const lengthScale of [1, 0.25]) {
      it(`${file} at length scale ${lengthScale}`, async () => {
        const trace = await loadTrace(tracePath(file), {
          maxModelLen: 131_072,
          lengthScale,
          ratePerSecond: 5,
        })
        const prompts = createPromptBuilder({ seed: 1, blockTokens: trace.blockTokens })
        for (const r of sample(trace.requests, 40, 11)) {
          const messages = prompts.messages(r)
          assert.equal(countChatTokens(messages), r.inputTokens, `row ${r.id}`)
          assert.equal(chatPromptIdentity(messages).promptTokens, r.inputTokens, `row ${r.id}`)
        }
      })
    }
  }
})
