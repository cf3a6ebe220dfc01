import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { findPicker } from '../../../src/balancer/picker-registry.ts'
import { createAyaPicker } from '../../../src/balancer/pickers/aya.ts'
import { ayaOptionsSchema } from '../../../src/balancer/pickers/aya-options.ts'
import { createUpstreamGroup } from '../../../src/balancer/upstream-group.ts'
import { createDesPubSub } from '../../../src/bench/des-pubsub.ts'
import { type UpstreamConfig, upstreamSchema } from '../../../src/config/schema.ts'
import { createLlmSignals } from '../../../src/llm/llm-signals.ts'
import { createPrefixPeers } from '../../../src/llm/prefix-peers.ts'
import { createLoadPeers, type LoadPeers } from '../../../src/upstream/load-peers.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../src/util/random.ts'
import { llmRequest, recordDecisions } from './pickers/llm-fixtures.ts'

// Config load parses a policy's options with its schema before any group sees them.
const upstream = (fields: Record<string, unknown>): UpstreamConfig => {
  const config = upstreamSchema.parse({
    policy: 'aya',
    endpoints: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }],
    ...fields,
  })
  const definition = findPicker(config.policy)!
  const policyOptions = definition.optionsSchema.parse(config.policyOptions) as Record<
    string,
    unknown
  >
  return { ...config, policyOptions }
}

function setup() {
  const clock = createManualClock()
  const group = createUpstreamGroup('llm', upstream({}), {
    clock,
    random: createSeededRandom(1),
  })
  const endpointId = group.endpoints()[0]!.id
  const released: string[] = []
  const enter = (name: string, tokens: number) => {
    const paced = group.pacer()!.enter(endpointId, tokens)
    paced.whenReleased(() => released.push(name))
    return paced
  }
  return { group, released, enter }
}

describe('upstream group reload', () => {
  test('keeps the picker and its pacer when the policy and its options are unchanged', () => {
    const { group, released, enter } = setup()
    const pacer = group.pacer()
    enter('busy', 30_000)
    enter('held', 1000)
    group.update(
      upstream({
        endpoints: [
          { url: 'http://127.0.0.1:1' },
          { url: 'http://127.0.0.1:2' },
          { url: 'http://127.0.0.1:3' },
        ],
      }),
    )
    assert.equal(group.pacer(), pacer)
    assert.equal(group.endpoints().length, 3)
    // Still paced: the held prompt waits for the one the same pacer sent.
    assert.deepEqual(released, ['busy'])
    assert.equal(pacer!.held, 1)
  })

  test('a new policy replaces the picker and releases what the old pacer held', () => {
    const { group, released, enter } = setup()
    const old = group.pacer()!
    enter('busy', 30_000)
    enter('held-1', 1000)
    enter('held-2', 2000)
    group.update(upstream({ policyOptions: { pacingLeadMs: 10 } }))
    assert.notEqual(group.pacer(), old)
    assert.equal(old.held, 0)
    assert.deepEqual(released, ['busy', 'held-1', 'held-2'])
    group.update(upstream({ policy: 'least-request' }))
    assert.equal(group.pacer(), undefined)
  })

  test('a weight-only reload keeps the endpoint and the work in flight on it', () => {
    const group = createUpstreamGroup('llm', upstream({ policyOptions: { pacing: false } }), {
      clock: createManualClock(),
      random: createSeededRandom(1),
    })
    const busy = group.endpoints()[0]!
    const leases = [1, 2, 3].map(() => busy.begin({ prefillTokens: 10_000, kvTokens: 12_000 }))
    group.update(
      upstream({
        policyOptions: { pacing: false },
        endpoints: [{ url: 'http://127.0.0.1:1', weight: 3 }, { url: 'http://127.0.0.1:2' }],
      }),
    )
    const after = group.find(busy.id)!
    assert.equal(after, busy, 'the same endpoint object')
    assert.equal(after.weight, 3)
    assert.equal(after.inflight, 3)
    assert.equal(after.pendingPrefillTokens, 30_000)
    assert.ok(group.eligible().includes(after))
    // The next prompt goes to the idle endpoint, not the busy one.
    assert.notEqual(group.select({ attempt: 0, llm: llmRequest('q'.repeat(4096)) }), busy)
    for (const lease of leases) lease.end({ ok: true, latencyMs: 1 })
    assert.equal(after.inflight, 0)
    assert.equal(after.kvTokens, 0)
  })

  test('a weighted policy sees a weight changed by reload', () => {
    const group = createUpstreamGroup('web', upstream({ policy: 'weighted-round-robin' }), {
      clock: createManualClock(),
      random: createSeededRandom(1),
    })
    group.update(
      upstream({
        policy: 'weighted-round-robin',
        endpoints: [{ url: 'http://127.0.0.1:1', weight: 3 }, { url: 'http://127.0.0.1:2' }],
      }),
    )
    const counts = new Map<string, number>()
    for (let i = 0; i < 40; i++) {
      const id = group.select({ attempt: 0 })!.id
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    assert.deepEqual([...counts.values()].sort(), [10, 30])
  })

  test('forgets what the picker learned of an endpoint id that now names another server, and only that', () => {
    const { group } = setup()
    const pacer = group.pacer()
    const [moved, kept] = group.endpoints().map((endpoint) => endpoint.id)
    const prompts = new Map<string, ReturnType<typeof llmRequest>>()
    // One conversation placed on each endpoint.
    for (let i = 0; prompts.size < 2 && i < 50; i++) {
      const llm = llmRequest(`conversation ${i} `.repeat(400))
      const placed = group.select({ attempt: 0, llm })!.id
      if (!prompts.has(placed)) prompts.set(placed, llm)
    }
    const hitsOn = (endpointId: string) => {
      const { decisions, stop } = recordDecisions()
      group.select({ attempt: 0, llm: prompts.get(endpointId)! })
      stop()
      return decisions[0]!.candidates.find((c) => c.endpoint === endpointId)!.hitTokens
    }
    assert.ok(hitsOn(moved!) > 0 && hitsOn(kept!) > 0)
    group.update(
      upstream({
        endpoints: [{ url: 'http://127.0.0.1:9', id: moved }, { url: 'http://127.0.0.1:2' }],
      }),
    )
    assert.equal(group.pacer(), pacer, 'the same picker: nothing else is forgotten')
    assert.equal(hitsOn(moved!), 0, 'the new server holds none of the old one’s prefixes')
    assert.ok(hitsOn(kept!) > 0, 'the rest of the fleet keeps its prefixes')
  })

  test('applies what other routers announce about an endpoint id that now names another server', () => {
    const clock = createManualClock()
    const hub = createDesPubSub({ delayMs: 1 }, { clock })
    const group = createUpstreamGroup('llm', upstream({ policyOptions: { pacing: false } }), {
      clock,
      random: createSeededRandom(1),
      prefixPeers: createPrefixPeers({ channel: 'prefix:llm' }, { state: hub }),
    })
    const [moved, kept] = group.endpoints().map((endpoint) => endpoint.id)
    group.update(
      upstream({
        policyOptions: { pacing: false },
        endpoints: [{ url: 'http://127.0.0.1:9', id: moved }, { url: 'http://127.0.0.1:2' }],
      }),
    )
    // Another router places a conversation on the moved endpoint.
    const other = createAyaPicker(ayaOptionsSchema.parse({ pacing: false }), {
      clock,
      random: createSeededRandom(2),
      prefixPeers: createPrefixPeers({ channel: 'prefix:llm' }, { state: hub }),
    })
    other.retain!(new Set([moved!, kept!]))
    const conversation = `conversation `.repeat(400)
    const exclude = new Set([kept!])
    assert.equal(
      other.pick(group.endpoints(), { attempt: 0, llm: llmRequest(conversation), exclude })?.id,
      moved,
    )
    clock.advance(1)
    const { decisions, stop } = recordDecisions()
    group.select({ attempt: 0, llm: llmRequest(`${conversation} and more`) })
    stop()
    const hits = decisions[0]!.candidates.find((c) => c.endpoint === moved)!.hitTokens
    assert.ok(hits > 1000, `hits on the moved endpoint: ${hits}`)
  })

  test('paces the server an endpoint id now names afresh, not behind the old server’s prompts', () => {
    const { group, released, enter } = setup()
    const [moved, kept] = group.endpoints().map((endpoint) => endpoint.id)
    enter('sent', 8_000)
    enter('held', 8_000)
    assert.deepEqual(released, ['sent'])
    group.update(
      upstream({
        endpoints: [
          { url: 'http://127.0.0.1:9', id: moved },
          { url: 'http://127.0.0.1:2', id: kept },
        ],
      }),
    )
    // What the old server's lane held goes at once, and so does the new server's first prompt:
    // nothing has been sent to it yet.
    assert.deepEqual(released, ['sent', 'held'])
    enter('first on the new server', 8_000)
    assert.deepEqual(released, ['sent', 'held', 'first on the new server'])
  })

  test('paces the new server behind its own prompts, not left unpaced while the old one’s are in flight', () => {
    const { group, released, enter } = setup()
    const [moved, kept] = group.endpoints().map((endpoint) => endpoint.id)
    const old = enter('old', 8_000)
    group.update(
      upstream({
        endpoints: [
          { url: 'http://127.0.0.1:9', id: moved },
          { url: 'http://127.0.0.1:2', id: kept },
        ],
      }),
    )
    enter('first', 8_000)
    // The new server is prefilling its first prompt: the next one waits for it.
    enter('second', 8_000)
    assert.deepEqual(released, ['old', 'first'])
    // Nor does a later eligibility change hand the id back the old server's lane.
    group.find(kept!)!.setHealth('healthy')
    old.done(true)
    assert.deepEqual(released, ['old', 'first'])
  })

  test('forgets the learned rates of an endpoint id that now names another server, and only those', () => {
    const clock = createManualClock()
    const llmSignals = createLlmSignals({ clock })
    const group = createUpstreamGroup('llm', upstream({}), {
      clock,
      random: createSeededRandom(1),
      llmSignals,
    })
    const [moved, kept] = group.endpoints().map((endpoint) => endpoint.id)
    // Both prefilled 2,000 tokens a second, well below the 10,000 assumed before any sample.
    for (const id of [moved!, kept!]) {
      for (let i = 0; i < 20; i++) {
        llmSignals.capacity.observe(id, {
          prefillAheadTokens: 0,
          prefillTokens: 2_000,
          ttftMs: 1_000,
          meanItlMs: undefined,
        })
      }
    }
    group.update(
      upstream({
        endpoints: [{ url: 'http://127.0.0.1:9', id: moved }, { url: 'http://127.0.0.1:2' }],
      }),
    )
    assert.equal(llmSignals.capacity.get(moved!).samples, 0)
    assert.ok(llmSignals.capacity.get(kept!).samples > 10)
  })

  test('lets prompts held for an endpoint health takes out go at once, to be placed elsewhere', () => {
    const { group, released, enter } = setup()
    enter('first', 30_000)
    enter('held-1', 1000)
    enter('held-2', 1000)
    assert.deepEqual(released, ['first'])
    group.endpoints()[0]!.setHealth('unhealthy')
    assert.deepEqual(released, ['first', 'held-1', 'held-2'])
  })

  test('a retired group lets what its pacer holds go at once', () => {
    const { group, released, enter } = setup()
    enter('first', 30_000)
    enter('held', 1000)
    group.retire()
    assert.deepEqual(released, ['first', 'held'])
  })

  test('a kept picker forgets what it held for endpoints that left: prefixes and idle lanes', () => {
    const { group, enter } = setup()
    const llm = llmRequest('p'.repeat(4096))
    const first = group.select({ attempt: 0, llm })!
    const hitsOn = (endpointId: string) => {
      const { decisions, stop } = recordDecisions()
      group.select({ attempt: 0, llm })
      stop()
      return decisions[0]!.candidates.find((c) => c.endpoint === endpointId)!.hitTokens
    }
    assert.ok(hitsOn(first.id) > 0, 'placed there: its prefix is known')
    enter('idle', 10).done(true)
    const pacer = group.pacer()!
    assert.equal(pacer.lanes, 1)
    const both = [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }]
    group.update(upstream({ endpoints: both.filter((e) => !e.url.endsWith(first.id.slice(-2))) }))
    group.update(upstream({ endpoints: both }))
    assert.equal(group.pacer(), pacer, 'the same picker')
    assert.equal(hitsOn(first.id), 0, 'a returning endpoint starts cold')
  })

  test('two groups sharing load count each other’s work, until a reload takes the endpoint from one of them', () => {
    const clock = createManualClock()
    const state = createDesPubSub({ delayMs: 1 }, { clock })
    const replica = () =>
      createUpstreamGroup('llm', upstream({ policy: 'least-request', policyOptions: {} }), {
        clock,
        random: createSeededRandom(1),
        loadPeers: createLoadPeers({ channel: 'load:llm' }, { state, clock }),
      })
    const [a, b] = [replica(), replica()]
    const [first, second] = a.endpoints()
    const lease = first!.begin({ prefillTokens: 500 })
    clock.advance(10)
    assert.deepEqual(
      b.endpoints().map((e) => [e.inflight, e.pendingPrefillTokens]),
      [
        [1, 500],
        [0, 0],
      ],
    )
    a.update(
      upstream({
        policy: 'least-request',
        policyOptions: {},
        endpoints: [{ url: second!.spec.url }],
      }),
    )
    clock.advance(10)
    assert.equal(b.endpoints()[0]!.inflight, 0, 'a no longer speaks for the endpoint it left')
    lease.end({ ok: true, status: 200, latencyMs: 1 })
    a.retire()
    b.retire()
  })

  test('tells the other replicas what its pacer sent, and what a pacer a reload replaced let go', () => {
    const clock = createManualClock()
    const state = createDesPubSub({ delayMs: 1 }, { clock })
    const replica = (loadPeers: LoadPeers) =>
      createUpstreamGroup('llm', upstream({}), { clock, random: createSeededRandom(1), loadPeers })
    const heardByB = createLoadPeers({ channel: 'load:llm' }, { state, clock })
    const a = replica(createLoadPeers({ channel: 'load:llm' }, { state, clock }))
    const b = replica(heardByB)
    const endpoint = a.endpoints()[0]!
    for (const tokens of [30_000, 1000, 1000]) {
      endpoint.begin({ prefillTokens: tokens })
      a.pacer()!
        .enter(endpoint.id, tokens)
        .whenReleased(() => {})
    }
    clock.advance(10)
    const sentTokens = () => heardByB.othersSent(endpoint.id).map((sent) => sent.tokens)
    assert.deepEqual(sentTokens(), [30_000], 'the two it holds are not at the engine')
    a.update(upstream({ policyOptions: { pacingLeadMs: 41 } }))
    clock.advance(10)
    assert.deepEqual(sentTokens(), [32_000], 'the replaced pacer let them go')
    a.retire()
    b.retire()
  })
})
