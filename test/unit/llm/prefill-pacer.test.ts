import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createPrefillPacer, type PrefillPacerOptions } from '../../../src/llm/prefill-pacer.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const OPTIONS: PrefillPacerOptions = {
  leadMs: 40,
  agingMs: 500,
  overheadMs: 0,
  batchTokens: 0,
  backlogPrompts: Number.MAX_SAFE_INTEGER,
}

function setup(options: Partial<PrefillPacerOptions> = {}, rate = 30_000) {
  const clock = createManualClock()
  const pacer = createPrefillPacer(
    { ...OPTIONS, ...options },
    { clock, prefillTokensPerSec: () => rate, decodeStepMs: () => 0 },
  )
  const released: string[] = []
  const enter = (name: string, tokens: number, endpoint = 'a', cachedTokens = 0) => {
    const paced = pacer.enter(endpoint, tokens, tokens + cachedTokens)
    paced.whenReleased(() => released.push(`${name}@${clock.now()}`))
    return paced
  }
  return { clock, pacer, released, enter }
}

/** The pacer with `moveColdToIdle`, each prompt entered with a move callback too. */
function movingSetup() {
  const clock = createManualClock()
  const pacer = createPrefillPacer(
    { ...OPTIONS, moveColdToIdle: true },
    { clock, prefillTokensPerSec: () => 30_000, decodeStepMs: () => 0 },
  )
  const released: string[] = []
  const moved: string[] = []
  const enter = (name: string, tokens: number, endpoint: string, cachedTokens = 0) => {
    const paced = pacer.enter(endpoint, tokens, tokens + cachedTokens)
    paced.whenReleased(
      () => released.push(name),
      () => {
        moved.push(name)
        // As a dispatcher does: the placement ends, and the request is placed again.
        paced.done(false)
      },
    )
    return paced
  }
  return { clock, pacer, released, moved, enter }
}

describe('prefill pacer: moving held cold prompts to an idle engine', () => {
  test('when an engine has none of its prefill left, the cold prompt held longest elsewhere moves', () => {
    const { clock, pacer, released, moved, enter } = movingSetup()
    enter('long', 30_000, 'a')
    enter('first held', 3000, 'a')
    clock.advance(5)
    enter('second held', 2000, 'a')
    const short = enter('short', 300, 'b')
    assert.deepEqual(released, ['long', 'short'])
    short.done(true)
    assert.deepEqual(moved, ['first held'], 'the one held longest, not the shortest')
    assert.equal(pacer.heldFor('a'), 1)
  })

  test('never moves a warm prompt, nor one from an engine with nothing sent, nor to a busy one', () => {
    const { pacer, moved, enter } = movingSetup()
    enter('long', 30_000, 'a')
    enter('warm', 1000, 'a', 9000)
    const short = enter('short', 300, 'b')
    const next = enter('next on b', 300, 'b')
    short.done(true)
    assert.deepEqual(moved, [], 'b still has prefill sent')
    next.done(true)
    assert.deepEqual(moved, [], 'a warm prompt stays with its cache')
    assert.equal(pacer.heldFor('a'), 1)
  })

  test('moves nothing without a move callback or with the option off', () => {
    const clock = createManualClock()
    for (const moveColdToIdle of [true, false]) {
      const pacer = createPrefillPacer(
        { ...OPTIONS, moveColdToIdle },
        { clock, prefillTokensPerSec: () => 30_000, decodeStepMs: () => 0 },
      )
      const moved: string[] = []
      pacer.enter('a', 30_000).whenReleased(() => {})
      // With the option on, a prompt entered without a move callback cannot move.
      pacer
        .enter('a', 3000)
        .whenReleased(() => {}, moveColdToIdle ? undefined : () => moved.push('held'))
      const short = pacer.enter('b', 300)
      short.whenReleased(() => {})
      short.done(true)
      assert.deepEqual(moved, [])
      assert.equal(pacer.heldFor('a'), 1)
      pacer.close()
    }
  })
})

describe('prefill pacer', () => {
  test('sends a prompt at once when nothing it sent to the endpoint is still prefilling', () => {
    const { released, enter, pacer } = setup()
    enter('a', 5000)
    assert.deepEqual(released, ['a@0'])
    assert.equal(pacer.held, 0)
  })

  test('holds the next prompt until the lead time before the first is predicted to finish', () => {
    const { clock, released, enter, pacer } = setup()
    enter('long', 30_000) // 1 s at 30k tokens/s
    enter('next', 1000)
    assert.deepEqual(released, ['long@0'])
    assert.equal(pacer.held, 1)
    clock.advance(959)
    assert.deepEqual(released, ['long@0'])
    clock.advance(1)
    assert.deepEqual(released, ['long@0', 'next@960'])
    assert.equal(pacer.held, 0)
  })

  test('on shed, gives up what it holds unsent, releases one that cannot be told, and sheds later arrivals at once', () => {
    const { clock, released, enter, pacer } = setup()
    const shed: string[] = []
    const enterShedding = (name: string, tokens: number) =>
      pacer.enter('a', tokens).whenReleased(
        () => released.push(name),
        undefined,
        () => shed.push(name),
      )
    enter('long', 30_000)
    enterShedding('held', 1000)
    enter('untold', 1000)
    assert.equal(pacer.held, 2)
    pacer.shed()
    assert.deepEqual(shed, ['held'])
    assert.deepEqual(released, ['long@0', 'untold@0'])
    assert.equal(pacer.held, 0)
    enterShedding('late', 1000)
    assert.deepEqual(shed, ['held', 'late'])
    clock.advance(2000)
    assert.deepEqual(released, ['long@0', 'untold@0'])
  })

  test('counts as sent prefill what it released and has no first token, not what it holds', () => {
    const { enter, pacer } = setup()
    const long = enter('long', 30_000)
    const next = enter('next', 1000)
    const gone = enter('gone', 700)
    enter('other', 500, 'b')
    assert.equal(pacer.sentPrefillTokens('a'), 30_000)
    assert.equal(pacer.heldPrefillTokens('a'), 1700)
    gone.done(false)
    assert.equal(pacer.heldPrefillTokens('a'), 1000, 'a withdrawn prompt is held no more')
    long.done(true)
    assert.equal(pacer.sentPrefillTokens('a'), 1000, 'the held one went')
    assert.equal(pacer.heldPrefillTokens('a'), 0)
    next.done(true)
    assert.equal(pacer.sentPrefillTokens('a'), 0)
    assert.equal(pacer.sentPrefillTokens('b'), 500)
    assert.equal(pacer.sentPrefillTokens('unknown'), 0)
    assert.equal(pacer.heldPrefillTokens('unknown'), 0)
  })

  test('sends the next prompt as soon as the first token shows the engine finished early', () => {
    const { clock, released, enter } = setup()
    const first = enter('first', 30_000)
    enter('second', 1000)
    clock.advance(300)
    first.done(true)
    assert.deepEqual(released, ['first@0', 'second@300'])
  })

  test('with a deep backlog, times the next prompt by the batch sent sharing steps', () => {
    // 20k tokens/s: 1000 tokens take 50 ms; each prompt has 10 ms of overhead.
    const options = { overheadMs: 10, batchTokens: 3000 }
    const timeOf = (backlogPrompts: number, cachedTokensOfD = 0) => {
      const { clock, released, enter } = setup({ ...options, backlogPrompts }, 20_000)
      for (const name of ['a', 'b', 'c']) enter(name, 1000)
      enter('d', 1000, 'a', cachedTokensOfD)
      clock.advance(200)
      return released.find((r) => r.startsWith('d@'))
    }
    // Sent together, a, b and c share steps and one overhead: they end at 160, not 180.
    assert.equal(timeOf(1), 'd@120')
    // Below the backlog: one after another, each with its overhead.
    assert.equal(timeOf(2), 'd@140')
    // A prompt expected half cached or more is timed late whatever the backlog.
    assert.equal(timeOf(1, 1000), 'd@140')
    // A small cached share, such as a system prompt every request shares, does not make it warm.
    assert.equal(timeOf(1, 200), 'd@120')
  })

  test('with a deep backlog, re-anchors the estimate at each first token', () => {
    const { clock, released, enter } = setup({ overheadMs: 10, backlogPrompts: 0 }, 20_000)
    const a = enter('a', 2000) // 10 + 100 ms
    for (const name of ['b', 'c', 'd']) enter(name, 2000)
    clock.advance(70)
    assert.deepEqual(released, ['a@0', 'b@70'])
    // With b sent, the prefill was predicted to end at 210. a's first token at 90 leaves only b:
    // it ends by 90 + 10 + 100 = 200, or sooner at the faster rate a showed. c's timer, armed
    // for 170, stands; d's is timed from the re-anchored end, about 15 ms sooner than from 210.
    clock.advance(20)
    a.done(true)
    clock.advance(250)
    const at = (name: string) =>
      Number(released.find((r) => r.startsWith(`${name}@`))?.split('@')[1])
    assert.equal(at('c'), 170)
    assert.ok(at('d') > 240 && at('d') < 255, `d went at ${at('d')}`)
  })

  test('releases the shortest waiting prompt first', () => {
    const { clock, released, enter } = setup({ leadMs: 0 })
    const busy = enter('busy', 3000)
    enter('long', 9000)
    enter('short', 300)
    enter('mid', 3000)
    clock.advance(10)
    busy.done(true)
    const order = released.map((r) => r.split('@')[0])
    assert.deepEqual(order, ['busy', 'short'])
    clock.runNext()
    clock.runNext()
    assert.deepEqual(
      released.map((r) => r.split('@')[0]),
      ['busy', 'short', 'mid', 'long'],
    )
  })

  test('lets a prompt that has waited past the aging time go ahead of shorter ones', () => {
    const { clock, released, enter } = setup({ leadMs: 0, agingMs: 100 })
    const busy = enter('busy', 30_000)
    enter('old-long', 9000)
    clock.advance(150)
    enter('new-short', 300)
    busy.done(true)
    assert.deepEqual(
      released.map((r) => r.split('@')[0]),
      ['busy', 'old-long'],
    )
  })

  test('withdraws a prompt whose client leaves before release, and never sends it', () => {
    const { clock, released, enter, pacer } = setup()
    const busy = enter('busy', 30_000)
    const gone = enter('gone', 1000)
    assert.equal(pacer.held, 1)
    gone.done(false)
    assert.equal(pacer.held, 0)
    busy.done(true)
    clock.advance(2000)
    assert.deepEqual(released, ['busy@0'])
  })

  test('keeps one lane per endpoint', () => {
    const { released, enter } = setup()
    enter('a1', 30_000, 'a')
    enter('b1', 30_000, 'b')
    enter('a2', 1000, 'a')
    assert.deepEqual(released, ['a1@0', 'b1@0'])
  })

  test('forgets idle lanes of departed endpoints; a busy one lets what it holds go at once', () => {
    const { enter, pacer, released } = setup()
    enter('gone-idle', 1000, 'gone').done(true)
    const busy = enter('leaving-busy', 30_000, 'leaving')
    const held = enter('leaving-held', 1000, 'leaving')
    enter('kept', 1000, 'kept').done(true)
    assert.equal(pacer.lanes, 3)
    assert.equal(pacer.held, 1)
    pacer.retainOnly(new Set(['kept']))
    assert.equal(pacer.lanes, 2, 'the idle departed lane is forgotten')
    assert.equal(pacer.held, 0, 'nothing is held for a departed endpoint, and nothing dropped')
    assert.ok(released.includes('leaving-held@0'))
    busy.done(true)
    assert.equal(pacer.lanes, 2, 'one prompt sent there is still prefilling')
    held.done(true)
    assert.equal(pacer.lanes, 1, 'forgotten once its last prompt is done, without another retain')
  })

  test('close releases everything it holds', () => {
    const { released, enter, pacer } = setup()
    enter('busy', 30_000)
    enter('held-1', 1000)
    enter('held-2', 2000)
    pacer.close()
    assert.equal(pacer.held, 0)
    assert.deepEqual(released, ['busy@0', 'held-1@0', 'held-2@0'])
  })

  test('learns how long the engine really takes and predicts the next release with it', () => {
    // The prior says 30k tokens/s; the engine keeps taking 2 s per 30k tokens.
    const { clock, released, enter } = setup({ leadMs: 0 })
    for (let i = 0; i < 20; i++) {
      const paced = enter(`p${i}`, 30_000)
      clock.advance(2000)
      paced.done(true)
    }
    released.length = 0
    enter('busy', 30_000)
    enter('next', 1000)
    clock.advance(1500)
    assert.deepEqual(released, ['busy@40000'], 'the learned rate predicts more than 1.5 s')
    clock.advance(600)
    assert.equal(released.length, 2)
  })

  test('reports when a paced prompt could start its prefill: after the one before it', () => {
    const { clock, enter } = setup({ leadMs: 500 })
    const first = enter('first', 30_000)
    const second = enter('second', 1000)
    clock.advance(500) // second released at 500, while first still prefills
    clock.advance(300)
    first.done(true) // first token at 800
    clock.advance(40)
    second.done(true)
    assert.deepEqual(first.prefillEvidence(), {
      sentAtMs: 0,
      prefillAheadTokens: 0,
      prefillTokens: 30_000,
    })
    assert.deepEqual(second.prefillEvidence(), {
      sentAtMs: 800,
      prefillAheadTokens: 0,
      prefillTokens: 1000,
    })
  })

  test('credits a batch to its first prompt when the step’s first tokens arrive a little apart', () => {
    // Sent together, prefilled in one 400-ms step; each response's first chunk comes in its own
    // socket read, fractions of a millisecond apart.
    const { clock, enter } = setup({ batchTokens: 8192 })
    const batch = ['a', 'b', 'c', 'd'].map((name) => enter(name, 2000))
    clock.advance(400)
    for (const paced of batch) {
      paced.done(true)
      clock.advance(0.05)
    }
    assert.deepEqual(batch[0]!.prefillEvidence(), {
      sentAtMs: 0,
      prefillAheadTokens: 0,
      prefillTokens: 8000,
    })
    for (const paced of batch.slice(1)) {
      const evidence = paced.prefillEvidence()
      // No interval of its own: a TTFT of 0, which capacity learning skips.
      assert.ok(evidence.sentAtMs >= 400, `sent at ${evidence.sentAtMs}`)
    }
    // A first token a whole step later is a step of its own.
    const next = enter('e', 2000)
    clock.advance(300)
    next.done(true)
    assert.equal(next.prefillEvidence().prefillTokens, 2000)
  })

  describe('with other router replicas sending to the same engine', () => {
    /** A pacer whose replicas' sent prompts are `others`, changed by the test as they are heard. */
    function withOthers(options: Partial<PrefillPacerOptions> = {}) {
      const clock = createManualClock()
      let others: Array<{ tokens: number; heardAtMs: number }> = []
      const sentTo: string[] = []
      const pacer = createPrefillPacer(
        { ...OPTIONS, ...options },
        {
          clock,
          prefillTokensPerSec: () => 30_000,
          decodeStepMs: () => 0,
          othersSent: () => others,
          onRelease: (endpointId) => sentTo.push(endpointId),
        },
      )
      const released: string[] = []
      const enter = (name: string, tokens: number) =>
        pacer.enter('a', tokens).whenReleased(() => released.push(`${name}@${clock.now()}`))
      const hear = (next: Array<{ tokens: number; heardAtMs: number }>) => {
        others = next
        pacer.poke('a')
      }
      return { clock, pacer, released, enter, hear, sentTo }
    }

    test('holds a prompt while another replica’s prompt prefills there, and sends it once that one is heard done', () => {
      const { clock, released, enter, hear, sentTo } = withOthers()
      hear([{ tokens: 15_000, heardAtMs: 0 }]) // 500 ms of prefill
      enter('mine', 1000)
      assert.deepEqual(released, [])
      clock.advance(100)
      hear([])
      assert.deepEqual(released, ['mine@100'])
      assert.deepEqual(sentTo, ['a'], 'the release is told, for the other replicas')
    })

    test('times the prompt by the other replica’s predicted end, counted from when it was heard', () => {
      const { clock, released, enter, hear } = withOthers()
      clock.advance(200)
      hear([{ tokens: 15_000, heardAtMs: 100 }]) // predicted done at 600
      enter('mine', 1000)
      clock.advance(359)
      assert.deepEqual(released, [])
      clock.advance(1)
      assert.deepEqual(released, ['mine@560'], 'the lead time before 600')
      // A replica heard long enough ago to have finished holds nobody up.
      hear([{ tokens: 15_000, heardAtMs: 0 }])
      enter('later', 1000)
      assert.deepEqual(released, ['mine@560', 'later@560'])
    })

    test('takes the prompts of two other replicas one after the other, not side by side', () => {
      const { clock, released, enter, hear } = withOthers({ agingMs: 5000 })
      hear([
        { tokens: 15_000, heardAtMs: 0 },
        { tokens: 15_000, heardAtMs: 0 },
      ])
      enter('mine', 1000)
      clock.advance(959)
      assert.deepEqual(released, [], 'their 1,000 ms of prefill is not over at 500')
      clock.advance(1)
      assert.deepEqual(released, ['mine@960'])
    })

    test('holds a prompt no longer than the aging bound, however long the others keep the engine', () => {
      const { clock, released, enter, hear } = withOthers({ agingMs: 300 })
      hear([{ tokens: 300_000, heardAtMs: 0 }]) // 10 s of prefill
      enter('mine', 1000)
      clock.advance(299)
      assert.deepEqual(released, [])
      clock.advance(1)
      assert.deepEqual(released, ['mine@300'])
    })

    test('lets a short prompt ride along with the others’ within the batch budget', () => {
      const { released, enter, hear } = withOthers({ batchTokens: 4096 })
      hear([{ tokens: 3000, heardAtMs: 0 }])
      enter('short', 1000)
      assert.deepEqual(released, ['short@0'])
      enter('long', 2000)
      assert.deepEqual(released, ['short@0'], 'past the budget it waits')
    })
  })
})
