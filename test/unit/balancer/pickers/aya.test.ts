import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { PickContext, Picker } from '../../../../src/balancer/picker.ts'
import { runDesPolicy } from '../../../../src/bench/des-runner.ts'
import type { LoadedTrace } from '../../../../src/bench/trace-loader.ts'
import type { TraceRequest } from '../../../../src/bench/trace-request.ts'
import { createLlmSignals, type LlmSignals } from '../../../../src/llm/llm-signals.ts'
import {
  ENGINE_PROFILES,
  type EngineProfile,
  H100_LLAMA3_8B,
} from '../../../../src/sim/profiles.ts'
import type { Endpoint } from '../../../../src/upstream/endpoint.ts'
import { createManualClock, type ManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../../src/util/random.ts'
import { hold, makeEndpoints } from '../../../conformance/picker-fixtures.ts'
import { DES_RUN_DEFAULTS, syntheticTrace } from '../../../helpers/synthetic-trace.ts'
import {
  assertHonoursExclusions,
  candidatesOf,
  createAya,
  engineMetrics,
  llmCtx,
  recordDecisions,
  routeTo,
  text,
} from './llm-fixtures.ts'

// Prompts in these tests are estimated at 4 characters a token, so a 64-character block is 16
// tokens. Without LLM signals every endpoint prefills at `priorPrefillTokensPerSec` (10k tok/s).

/** Places `ctx` and charges the lease the proxy would (at dispatch, with the policy's cost). */
function dispatch(picker: Picker, eligible: readonly Endpoint[], ctx: PickContext): Endpoint {
  const endpoint = picker.pick(eligible, ctx)
  assert.ok(endpoint)
  endpoint.begin(picker.leaseCost?.(endpoint, ctx))
  return endpoint
}

/** Uncached prompt tokens queued on the endpoint, as leases in flight would hold them. */
function queuePrefill(endpoint: Endpoint, tokens: number): void {
  endpoint.begin({ prefillTokens: tokens })
}

/** Signals whose capacity estimate for each endpoint is `rates[id]` tokens/s, well sampled. */
function signalsWithRates(rates: Readonly<Record<string, number>>): LlmSignals {
  const signals = createLlmSignals({ clock: createManualClock() })
  for (const [id, rate] of Object.entries(rates)) {
    for (let i = 0; i < 200; i++) {
      signals.capacity.observe(id, {
        prefillAheadTokens: 0,
        prefillTokens: rate,
        ttftMs: 1000,
        meanItlMs: 20,
      })
    }
  }
  return signals
}

describe('aya picker', () => {
  it('keeps a warm hit on the endpoint holding its prefix though another is idle', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1, 1])
    const history = text('conversation', 6400) // 1600 tokens
    routeTo(picker, eligible, eligible[1]!, history)
    queuePrefill(eligible[1]!, 3_000)
    assert.equal(picker.pick(eligible, llmCtx(history + text('turn 2', 200))), eligible[1])
  })

  it('releases affinity once the warm queue exceeds the best cold one by (1 + credit) × the hit', () => {
    // With no slack the rule is exact: warm holds while Q(warm) − Q(cold) ≤ (1 + credit) × hit.
    const options = { affinityCredit: 2, interferenceSlackShare: 0, interferenceSlackMs: 0 }
    const history = text('conversation', 6400)
    const followUp = history + text('turn 2', 640) // 1760 tokens, 1600 of them cached on e0
    const hitTokens = 1600
    for (const [queued, expected] of [
      [3 * hitTokens - 100, 'e0'],
      [3 * hitTokens + 100, 'e1'],
    ] as const) {
      const picker = createAya(options)
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[0]!, history)
      queuePrefill(eligible[0]!, queued)
      assert.equal(picker.pick(eligible, llmCtx(followUp))?.id, expected, `queued ${queued}`)
    }
  })

  it('counts the valve and warm hits per branch, and logs every candidate', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[0]!, history)
    const recorder = recordDecisions()
    try {
      picker.pick(eligible, llmCtx(history + text('a', 64)))
      queuePrefill(eligible[0]!, 1_000_000)
      picker.pick(eligible, llmCtx(history + text('b', 64)))
      picker.pick(eligible, llmCtx(text('fresh', 640)))
    } finally {
      recorder.stop()
    }
    assert.deepEqual(
      recorder.decisions.map((d) => d.branch),
      ['warm', 'valve', 'cold'],
    )
    const [warm] = recorder.decisions
    assert.equal(warm!.candidates.length, 2)
    assert.ok(warm!.candidates.every((c) => c.predictedTtftMs > 0 && c.costMs >= c.predictedTtftMs))
  })

  it('counts a warm endpoint that lost a near-tie draw as a tie, not as the valve', () => {
    // e0 holds a 64-token prefix and has the least queued: by the valve's rule affinity holds,
    // but all three are near ties and two are drawn, so e0 is sometimes left out.
    const branches = new Map<string, number>()
    for (let seed = 1; seed <= 60; seed++) {
      const picker = createAya({}, {}, seed)
      const eligible = makeEndpoints([1, 1, 1])
      const history = text('shared start', 256)
      routeTo(picker, eligible, eligible[0]!, history)
      queuePrefill(eligible[0]!, 9_000)
      queuePrefill(eligible[1]!, 10_000)
      queuePrefill(eligible[2]!, 10_000)
      const recorder = recordDecisions()
      let chosen: Endpoint | undefined
      try {
        chosen = picker.pick(eligible, llmCtx(history + text('question', 3200)))
      } finally {
        recorder.stop()
      }
      const { branch } = recorder.decisions[0]!
      assert.equal(branch, chosen === eligible[0] ? 'warm' : 'tie')
      branches.set(branch, (branches.get(branch) ?? 0) + 1)
    }
    assert.ok((branches.get('tie') ?? 0) > 0 && (branches.get('warm') ?? 0) > 0, `${[...branches]}`)
  })

  it('counts a warm endpoint ruled out by the TTFT SLO admission let it through for as slo', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1, 1])
    const history = text('conversation', 7600) // 1900 tokens
    routeTo(picker, eligible, eligible[0]!, history)
    queuePrefill(eligible[0]!, 30_000)
    const ctx = llmCtx(history + text('turn 2', 400))
    assert.equal(picker.canTake!(eligible, ctx, 1_000), true)
    const recorder = recordDecisions()
    try {
      assert.notEqual(picker.pick(eligible, ctx), eligible[0])
    } finally {
      recorder.stop()
    }
    const decision = recorder.decisions[0]!
    assert.equal(decision.branch, 'slo')
    const warm = decision.candidates.find((c) => c.endpoint === 'e0')!
    assert.equal(warm.withinSlo, false)
    assert.ok(Number.isFinite(warm.costMs), 'the logged cost is the real one, not Infinity')
  })

  it('does not count a prefix every endpoint holds (a shared system prompt) as affinity', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1, 1])
    const system = text('you are a helpful assistant', 1280)
    for (const endpoint of eligible)
      routeTo(picker, eligible, endpoint, system + text(endpoint.id, 640))
    queuePrefill(eligible[0]!, 2_000)
    queuePrefill(eligible[2]!, 2_000)
    const recorder = recordDecisions()
    try {
      assert.equal(picker.pick(eligible, llmCtx(system + text('new user', 640))), eligible[1])
    } finally {
      recorder.stop()
    }
    assert.equal(recorder.decisions[0]!.branch, 'cold')
  })

  it('spreads a burst of cold prompts evenly: router-side accounting sees its own dispatches', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1, 1, 1])
    const counts = new Map<string, number>()
    for (let i = 0; i < 40; i++) {
      const endpoint = dispatch(picker, eligible, llmCtx(text(`cold ${i}`, 4000)))
      counts.set(endpoint.id, (counts.get(endpoint.id) ?? 0) + 1)
    }
    assert.deepEqual([...counts.values()], [10, 10, 10, 10])
  })

  it('breaks exact ties at random, so an idle fleet is not loaded in endpoint order', () => {
    const firsts = new Set<string>()
    for (let seed = 1; seed <= 40; seed++) {
      const picker = createAya({}, {}, seed)
      firsts.add(picker.pick(makeEndpoints([1, 1, 1, 1]), llmCtx(text('cold', 640)))!.id)
    }
    assert.equal(firsts.size, 4)
  })

  it('leaves out an endpoint without KV headroom, even the warm one', () => {
    const picker = createAya({ defaultKvCapacityTokens: 100_000 })
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[0]!, history)
    eligible[0]!.begin({ kvTokens: 89_000 })
    assert.equal(picker.pick(eligible, llmCtx(history + text('next', 640))), eligible[1])
  })

  describe('branch labels with endpoints short of room', () => {
    const history = text('conversation', 6400) // 1600 tokens
    /** Fills e-`index`'s KV past the high-water mark (or, for 'decode', crawls its streams). */
    function block(
      eligible: readonly Endpoint[],
      index: number,
      how: 'kv' | 'decode',
      clock: ManualClock,
    ) {
      const endpoint = eligible[index]!
      if (how === 'kv') {
        endpoint.begin({ kvTokens: 89_000 })
        return
      }
      // A stream that crawls at 80 ms a token, against the 30-ms bound.
      const stream = endpoint.begin()
      for (let generated = 1; generated <= 33; generated++) {
        stream.progress(generated)
        clock.advance(80)
      }
    }
    const setUp = (count: number) => {
      const clock = createManualClock()
      const picker = createAya({ defaultKvCapacityTokens: 100_000, maxItlMs: 30 })
      return { clock, picker, eligible: makeEndpoints(Array(count).fill(1), 'e', clock) }
    }
    const decide = (picker: Picker, eligible: readonly Endpoint[], prompts: readonly string[]) => {
      const recorder = recordDecisions()
      try {
        for (const prompt of prompts) picker.pick(eligible, llmCtx(prompt))
      } finally {
        recorder.stop()
      }
      assert.equal(recorder.decisions.length, prompts.length)
      return recorder.decisions
    }

    it('counts the warm endpoint left out for want of KV or decode room as the valve', () => {
      for (const how of ['kv', 'decode'] as const) {
        const { clock, picker, eligible } = setUp(2)
        routeTo(picker, eligible, eligible[0]!, history)
        block(eligible, 0, how, clock)
        const [moved, fresh] = decide(picker, eligible, [
          history + text('next', 640),
          text('fresh', 640),
        ])
        assert.equal(moved!.chosen, 'e1', how)
        assert.equal(moved!.branch, 'valve', how)
        const e0 = moved!.candidates.find((c) => c.endpoint === 'e0')!
        assert.equal(e0.hitTokens, 1600)
        assert.deepEqual([e0.kvOk, e0.decodeOk], how === 'kv' ? [false, true] : [true, false])
        // Nothing of a fresh prompt is held anywhere: no hit was given up.
        assert.equal(fresh!.branch, 'cold', how)
      }
    })

    /**
     * The decision for the next turn of `history` over `count` endpoints, once each of `held`
     * holds its prefix ([endpoint index, prompt]) and each of `full` has its KV filled.
     */
    const nextTurn = (count: number, held: ReadonlyArray<[number, string]>, full: number[]) => {
      const { clock, picker, eligible } = setUp(count)
      for (const [index, prompt] of held) routeTo(picker, eligible, eligible[index]!, prompt)
      for (const index of full) block(eligible, index, 'kv', clock)
      return decide(picker, eligible, [history + text('next', 640)])[0]!
    }

    it('counts the valve when the warmest lacks room though a less warm endpoint got the prompt', () => {
      // 800 tokens held on e1, 1600 on e0, and e0 full.
      const moved = nextTurn(
        3,
        [
          [1, history.slice(0, 3200)],
          [0, history],
        ],
        [0],
      )
      assert.equal(moved.chosen, 'e1')
      assert.equal(moved.branch, 'valve')
    })

    it('counts warm when the endpoint without room held nothing of the prompt', () => {
      const kept = nextTurn(2, [[0, history]], [1])
      assert.equal(kept.chosen, 'e0')
      assert.equal(kept.branch, 'warm')
    })

    it('counts saturated, not the valve, when no endpoint has room', () => {
      assert.equal(nextTurn(2, [[0, history]], [0, 1]).branch, 'saturated')
    })
  })

  it('uses the least-bad endpoint when none has KV headroom (saturated)', () => {
    const picker = createAya({ defaultKvCapacityTokens: 100_000 })
    const eligible = makeEndpoints([1, 1])
    eligible[0]!.begin({ kvTokens: 95_000, prefillTokens: 5_000 })
    eligible[1]!.begin({ kvTokens: 95_000 })
    const recorder = recordDecisions()
    try {
      assert.equal(picker.pick(eligible, llmCtx(text('any', 640))), eligible[1])
    } finally {
      recorder.stop()
    }
    assert.equal(recorder.decisions[0]!.branch, 'saturated')
  })

  it('with maxItlMs, leaves out an endpoint whose streams decode too slowly now', () => {
    const clock = createManualClock()
    const eligible = makeEndpoints([1, 1], 'e', clock)
    // e1 has a long prefill queued (TTFT alone would pick e0), but e0's streams crawl.
    queuePrefill(eligible[1]!, 2_000)
    const stream = eligible[0]!.begin()
    for (let generated = 1; generated <= 33; generated++) {
      stream.progress(generated)
      clock.advance(80)
    }
    const ctx = () => llmCtx(text('prompt', 640))
    assert.equal(createAya().pick(eligible, ctx()), eligible[0])
    const checked = createAya({ maxItlMs: 50 })
    const recorder = recordDecisions()
    try {
      assert.equal(checked.pick(eligible, ctx()), eligible[1])
    } finally {
      recorder.stop()
    }
    assert.deepEqual(
      recorder.decisions[0]!.candidates.map((c) => c.decodeOk),
      [false, true],
    )
    // With every endpoint past the limit, canTake makes the request wait.
    const other = eligible[1]!.begin()
    for (let generated = 1; generated <= 33; generated++) {
      other.progress(generated)
      clock.advance(80)
    }
    assert.equal(checked.canTake!(eligible, ctx(), 10_000), false)
  })

  /** Two endpoints whose engines were scraped at `atMs`, now: `waiting` prompts wait at e0's. */
  function scrapedAt(atMs: number, waiting: number) {
    const clock = createManualClock()
    const eligible = makeEndpoints([1, 1], 'e', clock)
    clock.advance(atMs)
    const metrics = engineMetrics({ e0: { atMs, waiting }, e1: { atMs } })
    return { clock, eligible, picker: createAya({}, { engineMetrics: metrics, clock }) }
  }

  it('counts prompts a fresh scrape shows waiting that it did not send as queue ahead', () => {
    // Another router's 20 prompts wait at e0's engine, scraped just now; this router sent none.
    const { picker, eligible } = scrapedAt(1_000, 20)
    // One placement teaches it the size of the prompts it places (2000 tokens each).
    dispatch(picker, eligible, llmCtx(text('first', 8_000)))
    const [e0, e1] = candidatesOf(picker, eligible, llmCtx(text('next', 8_000)))
    // e0: 20 foreign prompts (4 s at 10k tok/s) ahead, less the one this router placed there
    // if it went to e0; e1: its own queue only.
    assert.ok(e0!.predictedTtftMs > 3_500, `e0 predicted ${e0!.predictedTtftMs} ms`)
    assert.ok(e1!.predictedTtftMs < 600, `e1 predicted ${e1!.predictedTtftMs} ms`)
  })

  it("does not let its own prompts the pacer holds hide another router's waiting at the engine", () => {
    const { picker, eligible } = scrapedAt(1_000, 10)
    // Ten of this router's prompts leased on e0: one sent, nine held behind it by the pacer.
    for (let i = 0; i < 10; i++) {
      const cost = { prefillTokens: i === 0 ? 30_000 : 100 }
      eligible[0]!.begin(cost)
      picker.pacer!.enter('e0', cost.prefillTokens).whenReleased(() => {})
    }
    assert.equal(picker.pacer!.heldFor('e0'), 9)
    const [e0] = candidatesOf(picker, eligible, llmCtx(text('first', 8_000)))
    // At most one of the ten waiting can be its own: nine are another router's, queued ahead.
    const ownOnlyMs = ((30_000 + 900 + 2_000) / 10_000) * 1000
    assert.ok(e0!.predictedTtftMs > ownOnlyMs + 500, `e0 predicted ${e0!.predictedTtftMs} ms`)
  })

  it("does not take its own prompts, started since the scrape, for another router's, however many", () => {
    // The scrape saw `started` waiting at e0: this router's, all started since (first tokens
    // came). 400 is more than an endpoint remembers prefill ends for: a busy endpoint between
    // scrapes. None of them is another router's.
    for (const [started, gapMs] of [
      [3, 10],
      [400, 1],
    ] as const) {
      const { picker, eligible, clock } = scrapedAt(0, started)
      for (let i = 0; i < started; i++) {
        const lease = eligible[0]!.begin({ prefillTokens: 500 })
        clock.advance(gapMs)
        lease.firstToken()
      }
      const [e0, e1] = candidatesOf(picker, eligible, llmCtx(text('next', 8_000)))
      assert.equal(e0!.predictedTtftMs, e1!.predictedTtftMs, `${started} started`)
    }
  })

  /** One endpoint, and a picker whose predictor has seen 500 outputs of 100–299 tokens. */
  function withLearnedOutputs() {
    const llmSignals = createLlmSignals({ clock: createManualClock() })
    const key = { model: 'llama', route: '' }
    for (let i = 0; i < 500; i++) llmSignals.outputs.observe(key, 160, undefined, 100 + (i % 200))
    return { picker: createAya({}, { llmSignals }), eligible: makeEndpoints([1]) }
  }

  it('charges KV for what a response has generated and is still expected to', () => {
    const { picker, eligible } = withLearnedOutputs()
    const ctx = llmCtx(text('prompt', 640))
    const endpoint = dispatch(picker, eligible, ctx)
    const atDispatch = endpoint.kvTokens
    const lease = endpoint.begin(picker.leaseCost!(endpoint, ctx))
    // A second lease of the same 160-token prompt shares its blocks: only its output is new.
    assert.equal(endpoint.kvTokens, 2 * atDispatch - 160)
    for (let generated = 1; generated <= 280; generated++) lease.progress(generated)
    // Past most lengths seen, it holds what it generated plus a short remainder.
    const held = endpoint.kvTokens - atDispatch
    assert.ok(held > 256 && held < 320, `holds ${held} after 280 tokens`)
  })

  it('charges KV for each of several sequences sharing one prompt', () => {
    const { picker, eligible } = withLearnedOutputs()
    const one = picker.leaseCost!(eligible[0]!, llmCtx(text('prompt', 640)))!
    const three = picker.leaseCost!(eligible[0]!, llmCtx(text('prompt', 640), { sequences: 3 }))!
    // One prompt, three outputs (the mean output length is about 200). The prompt's 160
    // tokens are all in its pinned blocks, which the endpoint charges once.
    assert.equal(three.pinnedBlocks?.length, 10)
    assert.equal(three.kvTokens!, 3 * one.kvTokens!)
    // 150 tokens generated by each: each holds them and is still expected to go on.
    assert.equal(three.kvTokensAfter!(150), 3 * one.kvTokensAfter!(150))
    assert.ok(one.kvTokensAfter!(150) > 150)
  })

  it('shifts work to the endpoint it has learned prefills faster, in proportion', () => {
    const llmSignals = signalsWithRates({ e0: 30_000, e1: 10_000 })
    // A burst that is never answered: only the queues (and, by default, the streams) grow.
    const split = (options: Record<string, unknown>) => {
      const picker = createAya(options, { llmSignals })
      const eligible = makeEndpoints([1, 1])
      const tokens = new Map<string, number>()
      for (let i = 0; i < 80; i++) {
        const ctx = llmCtx(text(`cold ${i}`, 8000))
        const endpoint = dispatch(picker, eligible, ctx)
        tokens.set(endpoint.id, (tokens.get(endpoint.id) ?? 0) + ctx.llm!.promptTokens)
      }
      return tokens.get('e0')! / tokens.get('e1')!
    }
    // Queues fill in proportion to the rates (3:1, shrunk a little toward the pooled rate).
    const byQueue = split({ decodeInterference: 0 })
    assert.ok(byQueue > 2.5 && byQueue < 3.1, `fast:slow work ${byQueue.toFixed(2)}`)
    // Decode interference leans near ties toward the endpoint with fewer streams in flight.
    const withStreams = split({})
    assert.ok(withStreams > 1.8 && withStreams <= byQueue, `fast:slow ${withStreams.toFixed(2)}`)
  })

  it('pools early, noisy rate estimates; a difference the samples support shows through', () => {
    /** The ratio of the rates aya uses for e0 and e1 after `n` responses each, e0 twice as fast. */
    const usedRatio = (n: number, options: Record<string, unknown> = {}) => {
      const llmSignals = createLlmSignals({ clock: createManualClock() })
      for (let i = 0; i < n; i++) {
        for (const [id, tokens] of [
          ['e0', 40_000],
          ['e1', 20_000],
        ] as const) {
          llmSignals.capacity.observe(id, {
            prefillAheadTokens: 0,
            prefillTokens: tokens,
            ttftMs: 1000,
            meanItlMs: undefined,
          })
        }
      }
      const picker = createAya(options, { llmSignals })
      const recorder = recordDecisions()
      try {
        picker.pick(makeEndpoints([1, 1]), llmCtx(text('x', 640)))
      } finally {
        recorder.stop()
      }
      const [e0, e1] = recorder.decisions[0]!.candidates
      return e0!.prefillTokensPerSec / e1!.prefillTokensPerSec
    }
    assert.ok(usedRatio(3) < 1.3, `${usedRatio(3)} after 3 responses`)
    assert.ok(usedRatio(3, { rateNoise: 0 }) > 1.8, 'unpooled')
    assert.ok(usedRatio(200) > 1.8, `${usedRatio(200)} after 200 responses`)
  })

  it('breaks near ties by decode interference: the prefill goes where fewer streams stall', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    hold(eligible[0]!, 30)
    queuePrefill(eligible[1]!, 300) // 30 ms more queue on e1, within the 20 % slack
    assert.equal(picker.pick(eligible, llmCtx(text('cold', 16_000))), eligible[1])
    queuePrefill(eligible[1]!, 40_000) // far outside it: TTFT decides
    assert.equal(picker.pick(eligible, llmCtx(text('other', 16_000))), eligible[0])
  })

  it('decides near ties among two drawn at random, so it does not herd onto the best one', () => {
    /** How often each of four near-tied endpoints wins, e0 the best by interference. */
    const wins = (options: Record<string, unknown>) => {
      const counts = [0, 0, 0, 0]
      for (let seed = 1; seed <= 400; seed++) {
        const picker = createAya(options, {}, seed)
        const eligible = makeEndpoints([1, 1, 1, 1])
        // Streams in flight: e0 fewest, e3 most; prefill queues equal, so all are near ties.
        for (const [i, endpoint] of eligible.entries()) hold(endpoint, i + 1)
        const chosen = picker.pick(eligible, llmCtx(text('cold', 16_000)))!
        counts[eligible.indexOf(chosen)]!++
      }
      return counts
    }
    // Every near tie considered: the one with the fewest streams always wins.
    assert.deepEqual(wins({ nearTieChoices: 0 }), [400, 0, 0, 0])
    // Two of four drawn: the best wins when drawn (half the time), the worst never; the middle
    // two win as often as the better of a pair they are in, 1/3 and 1/6 of the time.
    const [e0, e1, e2, e3] = wins({})
    assert.equal(e3, 0)
    assert.ok(e0! > 160 && e0! < 240, `best won ${e0} of 400`)
    assert.ok(e1! > 100 && e1! < 170, `second won ${e1} of 400`)
    assert.ok(e2! > 40 && e2! < 100, `third won ${e2} of 400`)
  })

  it('sends cold prompts where the cache has grown least lately, to evict the least valued blocks', () => {
    /** Where a cold prompt goes after e0's cache took in 20 new prompts, over 50 seeds. */
    const wentTo = (options: Record<string, unknown>) => {
      const counts = new Map<string, number>()
      for (let seed = 1; seed <= 50; seed++) {
        const picker = createAya(options, {}, seed)
        const eligible = makeEndpoints([1, 1])
        for (let i = 0; i < 20; i++) routeTo(picker, eligible, eligible[0]!, text(`old ${i}`, 640))
        const chosen = picker.pick(eligible, llmCtx(text('new', 640)))!.id
        counts.set(chosen, (counts.get(chosen) ?? 0) + 1)
      }
      return counts
    }
    assert.equal(wentTo({}).get('e1'), 50)
    // Without it the two are an exact tie, broken at random.
    const untouched = wentTo({ coldGrowth: 0 })
    assert.ok((untouched.get('e0') ?? 0) > 10 && (untouched.get('e1') ?? 0) > 10)
  })

  it('sends a session to its last endpoint while that is a near tie, and away once it is not', () => {
    // 400-token prompts at 10k tok/s: 45 ms predicted; the near-tie slack is 20 ms (40 tokens).
    for (const [queued, session, expected] of [
      [100, 's1', 'e1'],
      [100, undefined, 'e0'],
      [1000, 's1', 'e0'],
    ] as const) {
      const picker = createAya()
      const eligible = makeEndpoints([1, 1])
      routeTo(picker, eligible, eligible[1]!, text('turn 1', 1600), { sessionKey: 's1' })
      queuePrefill(eligible[1]!, queued)
      // A different text: the prefix index sees no hit anywhere, only the session links them.
      const next = llmCtx(text('turn 2', 1600), { sessionKey: session })
      assert.equal(picker.pick(eligible, next)?.id, expected, `queued ${queued}, ${session}`)
    }
  })

  it('sends a session new to it home, where every router replica sends it without sharing state', () => {
    const homes = new Set<string>()
    for (let seed = 1; seed <= 40; seed++) {
      // Each seed is another router replica: its own picker, endpoints and random draws.
      const picker = createAya({}, {}, seed)
      const eligible = makeEndpoints([1, 1, 1, 1])
      homes.add(picker.pick(eligible, llmCtx(text('turn 2', 1600), { sessionKey: 's7' }))!.id)
    }
    assert.equal(homes.size, 1)
    // Not a near tie: load decides, and the session is recorded where it went.
    const picker = createAya()
    const eligible = makeEndpoints([1, 1, 1, 1])
    const [home] = homes
    queuePrefill(eligible.find((e) => e.id === home)!, 50_000)
    assert.notEqual(
      picker.pick(eligible, llmCtx(text('turn 3', 1600), { sessionKey: 's7' }))!.id,
      home,
    )
  })

  it('sends a session whose last endpoint is gone home, not anywhere', () => {
    const places = new Set<string>()
    for (let seed = 1; seed <= 40; seed++) {
      const picker = createAya({}, {}, seed)
      const eligible = makeEndpoints([1, 1, 1, 1])
      routeTo(picker, eligible, eligible[3]!, text('turn 1', 1600), { sessionKey: 's7' })
      // e3 failed this request (or left): the next turn is still kept together.
      const next = llmCtx(text('turn 2', 1600), { sessionKey: 's7' }, ['e3'])
      places.add(picker.pick(eligible, next)!.id)
    }
    assert.equal(places.size, 1, [...places].join(', '))
  })

  it('lets the prefix index decide over the session where it sees the prompt', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 1600)
    routeTo(picker, eligible, eligible[0]!, history)
    // The session's last turn went to e1, but the index holds this prompt's prefix on e0.
    routeTo(picker, eligible, eligible[1]!, text('elsewhere', 1600), { sessionKey: 's1' })
    // A queue on e0 makes the two a near tie (costs 845 and 855 ms, slack 20 ms), where a
    // session preference would decide.
    queuePrefill(eligible[0]!, 6700)
    const next = llmCtx(history + text('turn 2', 400), { sessionKey: 's1' })
    assert.equal(picker.pick(eligible, next)?.id, 'e0')
  })

  it('forgets sessions with sessionAffinity: false', () => {
    const picker = createAya({ sessionAffinity: false })
    const eligible = makeEndpoints([1, 1])
    routeTo(picker, eligible, eligible[1]!, text('turn 1', 1600), { sessionKey: 's1' })
    queuePrefill(eligible[1]!, 100)
    const next = llmCtx(text('turn 2', 1600), { sessionKey: 's1' })
    assert.equal(picker.pick(eligible, next)?.id, 'e0')
  })

  it('charges its lease only the uncached prefill, plus prompt and predicted output as KV', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[0]!, history)
    const ctx = llmCtx(history + text('next', 640), { maxTokens: 100 })
    const endpoint = picker.pick(eligible, ctx)
    assert.equal(endpoint, eligible[0])
    const { pinnedBlocks, ...cost } = picker.leaseCost!(endpoint!, ctx)!
    // The prompt's 1,760 tokens are in its 110 pinned blocks, which the endpoint charges.
    assert.deepEqual(cost, { prefillTokens: 1760 - 1600, kvTokens: 100, pinnedBlockTokens: 16 })
    assert.equal(pinnedBlocks?.length, (6400 + 640) / 64, 'the prompt’s blocks stay pinned')
    assert.equal(picker.leaseCost!(endpoint!, { attempt: 0 }), undefined, 'no LLM body, no cost')
  })

  it('charges a prefix that requests in flight share once, as the engine’s prefix cache holds it', () => {
    // One endpoint of 262,144 KV tokens; 40 requests on one 8,000-token document, 100-token
    // questions, 256 tokens out each. Charged whole, 40 × 8,356 would be past the high-water mark.
    const picker = createAya({ pacing: false })
    const [endpoint] = makeEndpoints([1])
    const documentText = text('document', 32_000)
    const leases = []
    for (let i = 0; i < 40; i++) {
      const ctx = llmCtx(documentText + text(`question ${i}`, 400), { maxTokens: 256 })
      assert.equal(picker.canTake!([endpoint!], ctx, 60_000), true, `request ${i}`)
      const picked = picker.pick([endpoint!], ctx)!
      leases.push(picked.begin(picker.leaseCost?.(picked, ctx)))
    }
    assert.ok(
      endpoint!.kvTokens < 8_000 + 40 * (100 + 256 + 64),
      `router-side KV ${endpoint!.kvTokens} for one shared document`,
    )
    // The first ends: the others still hold the document, which stays charged.
    leases.shift()!.end({ ok: true, latencyMs: 1 })
    assert.ok(endpoint!.kvTokens > 8_000, `router-side KV ${endpoint!.kvTokens}`)
    // Once they all end, nothing stays pinned or charged.
    for (const lease of leases) lease.end({ ok: true, latencyMs: 1 })
    assert.equal(endpoint!.kvTokens, 0)
    assert.equal(endpoint!.pinnedPrefixBlocks([1, 2, 3]), 0)
  })

  it('canTake: false while every endpoint’s predicted TTFT exceeds the SLO, true once one is idle', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const ctx = llmCtx(text('prompt', 4000)) // 1000 tokens: 100 ms alone
    queuePrefill(eligible[0]!, 50_000) // 5 s of queue
    const lease = eligible[1]!.begin({ prefillTokens: 50_000 })
    assert.equal(picker.canTake!(eligible, ctx, 2_000), false)
    assert.equal(picker.canTake!(eligible, ctx, 6_000), true)
    lease.firstToken()
    assert.equal(picker.canTake!(eligible, ctx, 2_000), true)
    assert.equal(picker.pick(eligible, ctx), eligible[1])
  })

  it('counts a request the admission queue holds as the queue branch, with its candidates', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    for (const endpoint of eligible) queuePrefill(endpoint, 50_000)
    const ctx = llmCtx(text('prompt', 4000))
    const recorder = recordDecisions()
    try {
      // Re-checks while it waits decide nothing; being queued is the decision.
      for (let i = 0; i < 3; i++) assert.equal(picker.canTake!(eligible, ctx, 2_000), false)
      assert.equal(recorder.decisions.length, 0)
      picker.queued!(eligible, ctx)
    } finally {
      recorder.stop()
    }
    assert.equal(recorder.decisions.length, 1)
    const [queued] = recorder.decisions
    assert.equal(queued!.branch, 'queue')
    assert.equal(queued!.chosen, '')
    assert.deepEqual(
      queued!.candidates.map((c) => c.predictedTtftMs > 2_000),
      [true, true],
    )
  })

  it('re-checking queued requests hashes each prompt once, however many are re-checked in turn', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    queuePrefill(eligible[0]!, 50_000)
    queuePrefill(eligible[1]!, 50_000)
    // Counts reads of each prompt's text: hashing reads it; scoring a cached request reads only
    // its length once.
    const reads = new Map<PickContext, number>()
    const queued = [0, 1, 2].map((i) => {
      const ctx = llmCtx(text(`queued-${i}`, 4000))
      const promptText = ctx.llm!.promptText
      Object.defineProperty(ctx.llm, 'promptText', {
        get: () => {
          reads.set(ctx, (reads.get(ctx) ?? 0) + 1)
          return promptText
        },
      })
      return ctx
    })
    // The admission queue's re-check asks about each request it holds, in turn, every time.
    for (const ctx of queued) assert.equal(picker.canTake!(eligible, ctx, 2_000), false)
    const firstPass = queued.map((ctx) => reads.get(ctx)!)
    for (const ctx of queued) assert.equal(picker.canTake!(eligible, ctx, 2_000), false)
    for (const [i, ctx] of queued.entries()) {
      assert.ok(reads.get(ctx)! - firstPass[i]! < firstPass[i]!, `request ${i} was hashed again`)
    }
  })

  it('sizes its index with the model’s running characters a token: one dense prompt does not shrink it', () => {
    // 4,096 KV tokens at ~4 characters a token is 256 blocks of 64 characters.
    const picker = createAya({ defaultKvCapacityTokens: 4096 })
    const eligible = makeEndpoints([1, 1])
    const prose = text('prose', 6400) // 100 blocks
    routeTo(picker, eligible, eligible[0]!, prose)
    // 65 blocks at one character a token: sized by it alone, the index would shrink to 64 blocks.
    routeTo(picker, eligible, eligible[0]!, text('dense', 4160), { promptTokens: 4160 })
    const { decisions, stop } = recordDecisions()
    picker.pick(eligible, llmCtx(prose))
    stop()
    const warm = decisions[0]!.candidates.find((c) => c.endpoint === eligible[0]!.id)!
    assert.equal(warm.hitTokens, 1599)
  })

  it('a queued request sees blocks placed after it was first scored', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const shared = text('shared', 6400)
    const waiting = llmCtx(`${shared}${text('turn-2', 400)}`)
    assert.equal(picker.canTake!(eligible, waiting, 2_000), true)
    // While it waits, an earlier turn with the same 1,600-token prefix is placed on e1.
    routeTo(picker, eligible, eligible[1]!, shared)
    assert.equal(picker.pick(eligible, waiting), eligible[1])
  })

  it('after canTake, picks an endpoint that keeps the SLO it promised, over a warm one', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[0]!, history)
    queuePrefill(eligible[0]!, 25_000) // warm, but 2.5 s of queue; sticky enough without an SLO
    const ctx = llmCtx(history + text('next', 640))
    assert.equal(picker.pick(eligible, ctx), eligible[0])
    const admitted = llmCtx(history + text('next', 640))
    assert.equal(picker.canTake!(eligible, admitted, 2_000), true)
    // Others are judged and placed while the admitted request awaits its turn.
    picker.canTake!(eligible, llmCtx(text('other', 640)), 2_000)
    const other = llmCtx(text('another', 640))
    const otherEndpoint = picker.pick(eligible, other)!
    assert.equal(picker.pick(eligible, admitted), eligible[1])
    const { pinnedBlocks: _, ...cost } = picker.leaseCost!(eligible[1]!, admitted)!
    assert.deepEqual(cost, {
      prefillTokens: (6400 + 640) / 4,
      kvTokens: 256,
      pinnedBlockTokens: 16,
    })
    assert.ok(picker.leaseCost!(otherEndpoint, other), 'each placement keeps its own cost')
  })

  it('canTake: false when no endpoint has KV headroom for the request', () => {
    const picker = createAya({ defaultKvCapacityTokens: 100_000 })
    const eligible = makeEndpoints([1, 1])
    for (const endpoint of eligible) endpoint.begin({ kvTokens: 95_000 })
    assert.equal(picker.canTake!(eligible, llmCtx(text('prompt', 4000)), 2_000), false)
  })

  it('never returns an excluded endpoint', () => {
    assertHonoursExclusions(createAya())
    assertHonoursExclusions(createAya({ affinityCredit: 0, decodeInterference: 0 }, {}, 9))
  })

  it('returns undefined when every endpoint is excluded, and places non-LLM requests by load', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    assert.equal(picker.pick(eligible, llmCtx(text('x', 640), {}, ['e0', 'e1'])), undefined)
    hold(eligible[0]!, 5)
    assert.equal(picker.pick(eligible, { attempt: 0 }), eligible[1])
  })
})

describe('aya picker: per-model state, failed attempts, decisions', () => {
  /** The hit tokens the picker saw on `endpointId` when it placed `ctx`. */
  function hitOn(picker: Picker, eligible: readonly Endpoint[], ctx: PickContext, id: string) {
    const recorder = recordDecisions()
    try {
      picker.pick(eligible, ctx)
    } finally {
      recorder.stop()
    }
    return recorder.decisions[0]!.candidates.find((c) => c.endpoint === id)!.hitTokens
  }

  it('a model and its LoRA adapters share an endpoint’s KV: one’s blocks evict the other’s there, not elsewhere', () => {
    // 4,096 KV tokens at 4 characters a token: 256 blocks of 64 characters per endpoint.
    const picker = createAya({ pacing: false, defaultKvCapacityTokens: 4096 })
    const eligible = makeEndpoints([1, 1, 1])
    const base = { model: 'llama', servedModel: 'llama' }
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[1]!, history, base)
    // Three adapters' prompts of 100 blocks each on another endpoint leave it alone...
    for (const adapter of ['sql-lora', 'chat-lora', 'code-lora']) {
      routeTo(picker, eligible, eligible[2]!, text(adapter, 6400), {
        model: adapter,
        servedModel: adapter,
      })
    }
    const next = history + text('turn 2', 200)
    assert.ok(hitOn(picker, eligible, llmCtx(next, base), 'e1') > 1000, 'the base model kept')
    // ...and on its endpoint, with the base model's 100, overflow its 256.
    for (const adapter of ['sql-lora', 'chat-lora', 'code-lora']) {
      routeTo(picker, eligible, eligible[1]!, text(`${adapter} 2`, 6400), {
        model: adapter,
        servedModel: adapter,
      })
    }
    const last = next + text('turn 3', 200)
    assert.equal(hitOn(picker, eligible, llmCtx(last, base), 'e1'), 0, 'evicted by the adapters')
  })

  it('keeps an endpoint’s index at its size when a model with fewer characters a token places there', () => {
    // 4,096 KV tokens: 256 blocks of 64 characters at the prose model's 4 characters a token.
    const picker = createAya({ pacing: false, defaultKvCapacityTokens: 4096 })
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 12_800)
    routeTo(picker, eligible, eligible[0]!, history)
    // An adapter whose prompts (SQL, JSON) run 2 characters a token: sized by its ratio alone,
    // the shared index would shrink to 128 blocks and evict half the conversation.
    const dense = text('select', 128)
    routeTo(picker, eligible, eligible[0]!, dense, {
      model: 'sql-lora',
      servedModel: 'sql-lora',
      promptTokens: 64,
    })
    const next = llmCtx(history + text('turn 2', 200))
    assert.ok(hitOn(picker, eligible, next, 'e0') >= 3200 - 16)
  })

  it('matches a prompt under its served model, whatever alias the client used', () => {
    const picker = createAya({ pacing: false })
    const eligible = makeEndpoints([1, 1, 1])
    const prompt = text('conversation', 6400)
    const served = 'meta-llama/Llama-3.1-8B-Instruct'
    routeTo(picker, eligible, eligible[2]!, prompt, { model: 'llama-3.1-8b', servedModel: served })
    const viaAlias = llmCtx(prompt + text('turn 2', 200), { model: 'llama', servedModel: served })
    assert.ok(hitOn(picker, eligible, viaAlias, 'e2') > 1000)
  })

  it('a retry away from a failed attempt takes back the blocks that attempt inserted', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const picker = createAya({ pacing: false }, {}, seed)
      const eligible = makeEndpoints([1, 1, 1])
      const conversation = text('conversation', 6000)
      // The attempt never reached its endpoint: the proxy says so, then retries with the same
      // parsed request and the failed endpoint excluded.
      const llm = llmCtx(conversation).llm
      const exclude = new Set<string>()
      const failed = picker.pick(eligible, { attempt: 0, exclude, llm })!
      picker.unsent!(failed, { attempt: 0, exclude, llm })
      exclude.add(failed.id)
      const served = picker.pick(eligible, { attempt: 1, exclude, llm })!
      const next = llmCtx(conversation + text('turn 2', 400))
      assert.equal(hitOn(picker, eligible, llmCtx(conversation + text('x', 64)), failed.id), 0)
      assert.equal(picker.pick(eligible, next), served, `seed ${seed}`)
    }
  })

  it('takes back the insert of a placement that never reached its endpoint, and only that one', () => {
    const picker = createAya({ pacing: false })
    const eligible = makeEndpoints([1, 1])
    const conversation = text('conversation', 6000)
    const ctx = llmCtx(conversation, {}, ['e1'])
    assert.equal(picker.pick(eligible, ctx), eligible[0])
    // Told about another endpoint: nothing changes.
    picker.unsent!(eligible[1]!, ctx)
    assert.ok(
      hitOn(picker, eligible, llmCtx(conversation + text('x', 64), {}, ['e1']), 'e0') > 1000,
    )
    const other = llmCtx(text('another', 6000), {}, ['e1'])
    assert.equal(picker.pick(eligible, other), eligible[0])
    picker.unsent!(eligible[0]!, other)
    assert.equal(hitOn(picker, eligible, llmCtx(text('another', 6000) + text('y', 64)), 'e0'), 0)
  })

  it('keeps blocks a later placement matched through when the one that added them is taken back', () => {
    const picker = createAya({ pacing: false })
    const eligible = makeEndpoints([1, 1])
    const documentText = text('document', 6400)
    const first = llmCtx(documentText + text('question a', 64), {}, ['e1'])
    const second = llmCtx(documentText + text('question b', 64), {}, ['e1'])
    assert.equal(picker.pick(eligible, first), eligible[0])
    assert.equal(picker.pick(eligible, second), eligible[0])
    // The first client gave up while held; the second request still brings the document there.
    picker.unsent!(eligible[0]!, first)
    // Read without placing (as the queue explains a waiting request): a placement would vouch too.
    const hitSeen = () => {
      const recorder = recordDecisions()
      try {
        picker.queued!(eligible, llmCtx(documentText + text('question c', 64)))
      } finally {
        recorder.stop()
      }
      return recorder.decisions[0]!.candidates.find((c) => c.endpoint === 'e0')!.hitTokens
    }
    const kept = hitSeen()
    assert.ok(kept >= 1600, `hit ${kept} tokens after the first placement was taken back`)
    // Once the second never arrives either, nothing vouches for the document there.
    picker.unsent!(eligible[0]!, second)
    assert.equal(hitSeen(), 0)
  })

  it('a retracted prefix counts again once a pick places it on that endpoint', () => {
    const picker = createAya({ pacing: false })
    const eligible = makeEndpoints([1, 1])
    const conversation = text('conversation', 6000)
    const llm = llmCtx(conversation).llm
    const exclude = new Set(['e1'])
    assert.equal(picker.pick(eligible, { attempt: 0, exclude, llm }), eligible[0])
    picker.unsent!(eligible[0]!, { attempt: 0, exclude, llm })
    exclude.clear()
    exclude.add('e0')
    assert.equal(picker.pick(eligible, { attempt: 1, exclude, llm }), eligible[1])
    assert.equal(hitOn(picker, eligible, llmCtx(conversation, {}, ['e1']), 'e0'), 0)
    // That pick (excluding e1) placed the conversation on e0 for real.
    assert.ok(hitOn(picker, eligible, llmCtx(conversation + text('y', 64)), 'e0') > 1000)
  })

  it('places a request a sticky cookie bound (no pick) on its endpoint: charged its uncached part, its blocks indexed', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const history = text('conversation', 6400)
    routeTo(picker, eligible, eligible[0]!, history)
    // Bound to the warm endpoint: only the new turn is prefill (1,760 tokens, 1,600 cached).
    const warm = llmCtx(history + text('turn 2', 640), { maxTokens: 100 })
    const { pinnedBlocks: _, ...warmCost } = picker.leaseCost!(eligible[0]!, warm)!
    assert.deepEqual(warmCost, { prefillTokens: 160, kvTokens: 100, pinnedBlockTokens: 16 })
    // Three sequences hold one prompt's KV and three outputs'.
    const three = llmCtx(history + text('turn 2', 640), { maxTokens: 100, sequences: 3 })
    assert.equal(picker.leaseCost!(eligible[0]!, three)?.kvTokens, 300)
    // Bound to the cold one: all of it is prefill, counted on the bound branch, and the endpoint
    // now holds the conversation for the turns that follow.
    const recorder = recordDecisions()
    let cold: ReturnType<NonNullable<Picker['leaseCost']>>
    try {
      cold = picker.leaseCost!(eligible[1]!, llmCtx(history + text('turn 3', 640)))
    } finally {
      recorder.stop()
    }
    assert.equal(cold?.prefillTokens, 1760)
    assert.deepEqual(
      recorder.decisions.map((d) => [d.branch, d.chosen, d.candidates.length]),
      [['bound', 'e1', 1]],
    )
    // Ranked like any decision: its cost is this one's, not a previous decision's.
    const [bound] = recorder.decisions[0]!.candidates
    assert.ok(bound!.costMs >= bound!.predictedTtftMs && bound!.predictedTtftMs > 0)
    const next = llmCtx(history + text('turn 3', 640) + text('turn 4', 64))
    assert.ok(hitOn(picker, eligible, next, 'e1') >= 1760 - 16)
  })

  it('a request bound to another endpoint after a failed attempt takes back what that attempt inserted', () => {
    const picker = createAya({ pacing: false })
    const eligible = makeEndpoints([1, 1])
    const conversation = text('conversation', 6000)
    const llm = llmCtx(conversation).llm
    // The cookie's endpoint e0 failed to connect; the proxy binds the retry to e1, excluding e0.
    picker.leaseCost!(eligible[0]!, { attempt: 0, llm })
    picker.unsent!(eligible[0]!, { attempt: 0, llm })
    picker.leaseCost!(eligible[1]!, { attempt: 1, exclude: new Set(['e0']), llm })
    assert.equal(hitOn(picker, eligible, llmCtx(conversation + text('x', 64)), 'e0'), 0)
    assert.ok(hitOn(picker, eligible, llmCtx(conversation + text('y', 64)), 'e1') > 1000)
  })

  it('can take a request without LLM fields while an endpoint is left that it did not try', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    assert.equal(picker.canTake!(eligible, { attempt: 1, exclude: new Set(['e0']) }, 100), true)
    const both = new Set(['e0', 'e1'])
    assert.equal(picker.canTake!(eligible, { attempt: 2, exclude: both }, 100), false)
  })

  it('publishes its decision for a request without LLM fields (no-llm branch)', () => {
    const picker = createAya()
    const eligible = makeEndpoints([1, 1])
    const recorder = recordDecisions()
    let chosen: Endpoint | undefined
    try {
      chosen = picker.pick(eligible, { attempt: 0 })
    } finally {
      recorder.stop()
    }
    assert.equal(recorder.decisions.length, 1)
    assert.equal(recorder.decisions[0]!.branch, 'no-llm')
    assert.equal(recorder.decisions[0]!.chosen, chosen!.id)
  })
})

describe('aya on a mixed fleet (virtual time)', () => {
  // A GPU the simulator does not ship and Aya has never seen: a third of an H100's prefill
  // compute, a quarter of its chunk budget and slower decode.
  const slowProfile: EngineProfile = Object.freeze({
    ...H100_LLAMA3_8B,
    name: 'test-unseen-gpu',
    maxNumBatchedTokens: 2048,
    stepTime: Object.freeze({
      ...H100_LLAMA3_8B.stepTime,
      memoryBaseMs: 9,
      computePerPrefillTokenMs: 0.1,
      computePerDecodeSeqMs: 0.05,
    }),
  })
  const profiles = ENGINE_PROFILES as Map<string, EngineProfile>
  before(() => profiles.set(slowProfile.name, slowProfile))
  after(() => profiles.delete(slowProfile.name))

  /** A full-chunk prefill rate of the profile, tokens/s: what Aya should learn. */
  const chunkRate = (profile: EngineProfile) => {
    const chunk = profile.maxNumBatchedTokens
    const { overheadMs, computePerPrefillTokenMs } = profile.stepTime
    return (chunk / (overheadMs + computePerPrefillTokenMs * chunk)) * 1000
  }

  /**
   * Poisson arrivals of prompts without shared prefixes at about 95 % of the fleet's prefill
   * capacity, where a proportional split is what keeps every queue short. (Below that, lowest
   * predicted TTFT rightly gives the fast GPUs more than their share: they finish sooner.)
   */
  function trace(): LoadedTrace {
    const random = createSeededRandom(42)
    const requests: TraceRequest[] = []
    let atMs = 0
    for (let id = 0; id < 1500; id++) {
      atMs += -Math.log(1 - random()) * (1000 / 44)
      const inputTokens = 500 + Math.floor(random() * 2500)
      requests.push({ id, atMs, inputTokens, outputTokens: 16 + Math.floor(random() * 48) })
    }
    return syntheticTrace('mixed-fleet-test', requests, 64)
  }

  it('splits prefill work between fast and unseen slow GPUs within 15 % of the learned rates', () => {
    const recorder = recordDecisions()
    let record: ReturnType<typeof runDesPolicy>
    try {
      record = runDesPolicy({
        trace: trace(),
        policy: 'aya',
        replicas: 4,
        profile: `h100-llama3-8b:2,${slowProfile.name}:2`,
        ...DES_RUN_DEFAULTS,
      })
    } finally {
      recorder.stop()
    }
    assert.equal(record.outcomes.filter((o) => !o.ok).length, 0)
    const work = record.replicas.map((r) => r.prefixQueries - r.prefixHits)
    const rates = recorder.decisions.at(-1)!.candidates.map((c) => c.prefillTokensPerSec)
    const fastWork = work[0]! + work[1]!
    const slowWork = work[2]! + work[3]!
    const fastRate = rates[0]! + rates[1]!
    const slowRate = rates[2]! + rates[3]!
    // The rates Aya learned from TTFTs alone are the GPUs' real ones, within 15 %.
    rates.forEach((rate, i) => {
      const truth = chunkRate(i < 2 ? H100_LLAMA3_8B : slowProfile)
      assert.ok(Math.abs(rate / truth - 1) < 0.15, `replica ${i}: learned ${rate}, true ${truth}`)
    })
    const ratio = fastWork / slowWork / (fastRate / slowRate)
    assert.ok(
      ratio > 0.85 && ratio < 1.15,
      `work ${work.join(', ')}; learned ${rates.join(', ')} tok/s; work/rate ratio ${ratio.toFixed(2)}`,
    )
  })
})

describe('aya prefill pacing (virtual time)', () => {
  /**
   * One replica; every 3 s a 24k-token prompt arrives, and 10 ms later (while it prefills) a
   * second one together with four 500-token prompts.
   */
  function burstTrace(): LoadedTrace {
    const requests: TraceRequest[] = []
    for (let burst = 0; burst < 10; burst++) {
      const atMs = burst * 3000
      requests.push({ id: requests.length, atMs, inputTokens: 24_000, outputTokens: 8 })
      requests.push({ id: requests.length, atMs: atMs + 10, inputTokens: 24_000, outputTokens: 8 })
      for (let i = 0; i < 4; i++) {
        requests.push({ id: requests.length, atMs: atMs + 10, inputTokens: 500, outputTokens: 8 })
      }
    }
    return syntheticTrace('pacing-test', requests, 16)
  }

  const ttftsByLength = (pacing: boolean) => {
    const trace = burstTrace()
    const record = runDesPolicy({
      trace,
      policy: 'aya',
      replicas: 1,
      profile: 'h100-llama3-8b',
      ...DES_RUN_DEFAULTS,
      // Aging well past the long prefill, so that the short prompts may pass the waiting long one.
      policyOptions: { pacing, pacingAgingMs: 2000 },
    })
    const short: number[] = []
    const long: number[] = []
    for (const o of record.outcomes) {
      assert.ok(o.ok && o.firstContentMs !== undefined)
      const ttft = o.firstContentMs - o.sendMs
      ;(o.promptTokens! > 10_000 ? long : short).push(ttft)
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    return { short: mean(short), long: mean(long), count: record.outcomes.length }
  }

  it('sends short prompts ahead of a long one that arrived with them', () => {
    const unpaced = ttftsByLength(false)
    const paced = ttftsByLength(true)
    assert.equal(paced.count, 60)
    // Unpaced, the engine's FCFS queue puts the short prompts behind both long prefills (≈ 1.6 s);
    // paced, they wait only for the one already running (≈ 0.8 s).
    assert.ok(unpaced.short > 1400, `unpaced short prompts wait for both: ${unpaced.short}`)
    assert.ok(paced.short < 0.65 * unpaced.short, `paced ${paced.short} vs ${unpaced.short}`)
    // The long prompts pay only the short prompts' own prefill.
    assert.ok(paced.long < unpaced.long + 150, `long ${paced.long} vs ${unpaced.long}`)
  })
})
