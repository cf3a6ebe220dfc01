import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createRedisState } from '../../src/state/redis-state.ts'
import { createSystemClock } from '../../src/util/clock.ts'
import { loggedDecisions, type RunningAya, startLlmReplica } from '../helpers/aya.ts'
import { eventually } from '../helpers/eventually.ts'
import { startRedis, untilSubscribed } from '../helpers/redis-server.ts'
import { endpointIdOf as idOf, startSimEngines } from '../helpers/sim-engines.ts'

async function chat(aya: RunningAya, content: string): Promise<void> {
  const res = await request(`${aya.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama', max_tokens: 4, messages: [{ role: 'user', content }] }),
  })
  assert.equal(res.statusCode, 200)
  await res.body.dump()
}

/**
 * Sends one long prompt through replica `a`, waits until its announcement has crossed Redis (a
 * third client hears it), then the same prompt through `b`; answers b's decision and where a
 * placed the prompt.
 */
async function sameConversationThroughBoth(
  t: TestContext,
  options: { readonly sharedOnB: boolean },
) {
  const redis = await startRedis()
  t.after(() => redis.close())
  const keyPrefix = `aya-${randomUUID()}:`
  const engines = await startSimEngines(t, [H100_LLAMA3_8B, H100_LLAMA3_8B, H100_LLAMA3_8B], 20)
  const state = { store: 'redis', url: redis.url, keyPrefix }
  const a = await startLlmReplica(t, state, engines)
  const b = await startLlmReplica(t, state, engines, {
    sharePrefixIndex: options.sharedOnB,
  })
  const listener = createRedisState({ url: redis.url, keyPrefix }, { clock: createSystemClock() })
  t.after(() => listener.close())
  const heard: string[] = []
  listener.subscribe('prefix:fleet', (message) => heard.push(message))
  // a, the listener, and b when it shares.
  await untilSubscribed(redis, `${keyPrefix}prefix:fleet`, options.sharedOnB ? 3 : 2)

  const prompt = `conversation ${randomUUID()} ${'lorem ipsum dolor '.repeat(300)}`
  await chat(a, prompt)
  const placedByA = loggedDecisions(a).at(-1)!.chosen
  await eventually(() => heard.length > 0, 'the prompt announced on the prefix channel')
  // b hears the same fan-out as the listener, a moment later at most (generous for a busy CI).
  await new Promise((resolve) => setTimeout(resolve, 500))
  await chat(b, prompt)
  return { decision: loggedDecisions(b).at(-1)!, placedByA, engines }
}

describe('the prefix index shared between Aya replicas through Redis', () => {
  test('makes a prompt sent through one replica warm for the other, on the engine the first chose', async (t) => {
    const { decision, placedByA, engines } = await sameConversationThroughBoth(t, {
      sharedOnB: true,
    })
    assert.equal(decision.chosen, placedByA)
    assert.equal(decision.branch, 'warm')
    for (const engine of engines) {
      const candidate = decision.candidates.find((c) => c.endpoint === idOf(engine))!
      if (idOf(engine) === placedByA) {
        assert.ok(candidate.hitTokens > 1000, `hits where a sent it: ${candidate.hitTokens}`)
      } else assert.equal(candidate.hitTokens, 0)
    }
  })

  test('leaves the other replica cold with sharePrefixIndex off', async (t) => {
    const { decision } = await sameConversationThroughBoth(t, { sharedOnB: false })
    for (const candidate of decision.candidates) assert.equal(candidate.hitTokens, 0)
    assert.notEqual(decision.branch, 'warm')
  })
})
