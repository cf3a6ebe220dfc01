import { createManualClock } from '../util/manual-clock.ts'
import { createEngine } from './engine.ts'
import { parseOpenAiRequest } from './openai-request.ts'
import { chatChunk, sseData } from './openai-response.ts'
import type { EngineProfile } from './profiles.ts'

/**
 * Runs the hot paths once on a throwaway engine in virtual time, so the JIT has compiled them
 * before the first real request. At a high `--speedup`, a cold first request would otherwise show
 * up as step lateness of many engine milliseconds.
 */
export function warmUpSim(profile: EngineProfile): void {
  const clock = createManualClock()
  const engine = createEngine({ profile: { ...profile, numGpuBlocks: 4096 } }, { clock })
  const identity = { id: 'warm-up', created: 0, model: profile.modelName }
  const content = Array.from({ length: 600 }, (_, i) => `w${i % 97}`).join(' ')
  for (let i = 0; i < 24; i++) {
    const request = parseOpenAiRequest(
      'chat',
      { messages: [{ role: 'user', content: `${i % 4} ${content}` }], max_tokens: 32 },
      profile.blockSizeTokens,
    )
    if (!('prompt' in request)) continue
    engine.submit(
      { ...request.prompt, maxTokens: request.maxTokens },
      {
        onToken: (t) =>
          sseData(chatChunk(identity, { content: t.text }, null, { includeUsage: false })),
      },
    )
  }
  for (let n = 0; n < 100_000 && clock.runNext(); n++) {}
  engine.close()
}
