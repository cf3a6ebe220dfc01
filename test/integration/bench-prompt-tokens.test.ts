import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chatRequestHeaders, SIM_OUTPUT_TOKENS_HEADER } from '../../src/bench/chat-request.ts'
import { createPromptBuilder } from '../../src/bench/prompt-builder.ts'
import { loadTrace } from '../../src/bench/trace-loader.ts'
import { createSimFleet } from '../../src/sim/fleet.ts'
import { createSeededRandom } from '../../src/util/random.ts'
import { TRACE_FILES, tracePath } from '../unit/bench/shared-traces.ts'

describe('bench prompts over real simulator HTTP', () => {
  it('usage.prompt_tokens equals the trace input length on sampled rows of every trace', async (t) => {
    const fleet = await createSimFleet({ replicas: 1, profile: 'h100-llama3-8b', speedup: 1000 })
    t.after(() => fleet.close())
    const random = createSeededRandom(5)
    for (const file of Object.values(TRACE_FILES)) {
      const trace = await loadTrace(tracePath(file), { maxModelLen: 131_072, ratePerSecond: 5 })
      const prompts = createPromptBuilder({ seed: 1, blockTokens: trace.blockTokens })
      for (let k = 0; k < 4; k++) {
        const request = trace.requests[Math.floor(random() * trace.requests.length)]!
        const res = await fetch(`${fleet.urls[0]}/v1/chat/completions`, {
          method: 'POST',
          headers: { ...chatRequestHeaders(request), [SIM_OUTPUT_TOKENS_HEADER]: '1' },
          body: JSON.stringify({
            model: 'meta-llama/Llama-3.1-8B-Instruct',
            messages: prompts.messages(request),
            max_tokens: trace.maxTokens,
          }),
        })
        const body = (await res.json()) as { usage: { prompt_tokens: number } }
        assert.equal(res.status, 200, `${file} row ${request.id}`)
        assert.equal(body.usage.prompt_tokens, request.inputTokens, `${file} row ${request.id}`)
      }
    }
  })
})
