import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { PickContext, Picker } from '../../src/balancer/picker.ts'
import { PICKERS, pickerNames } from '../../src/balancer/picker-registry.ts'
import type { LlmRequest } from '../../src/llm/llm-request.ts'
import type { Endpoint, Lease } from '../../src/upstream/endpoint.ts'
import { createManualClock } from '../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../src/util/random.ts'
import { createFromDefinition, makeEndpoints, snapshot } from './picker-fixtures.ts'

// Properties every registered policy keeps, beyond picker.conformance.ts: there the requests carry
// no LLM body, so the prefix-aware policies' own paths are not walked; here every request carries
// a hash key, a client address and an LLM prompt, so every policy takes its keyed path.

/** Prompts over a two-letter alphabet share long prefixes, so prefix indexes get hits. */
const prompt = fc.stringMatching(/^[ab]{0,400}$/)
const weights = fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 })

function llmRequest(promptText: string): LlmRequest {
  return {
    api: 'openai.chat',
    model: 'llama',
    servedModel: 'llama',
    stream: true,
    maxTokens: 64,
    promptText,
    promptTokens: Math.ceil(promptText.length / 4),
    sessionKey: undefined,
    routeKey: '',
  }
}

function keyedContext(text: string, attempt: number, exclude?: ReadonlySet<string>): PickContext {
  return {
    attempt,
    exclude,
    hashKey: text,
    clientIp: `10.0.${text.length & 255}.${text.split('a').length & 255}`,
    llm: llmRequest(text),
  }
}

const PROPERTY_RUNS = { seed: 20_250_301, numRuns: 60 } as const

// A 160-point-per-weight ring of weights up to 1000 is up to a million points, rebuilt per run:
// a sparser ring walks the same code in a fraction of the time.
const FAST_OPTIONS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'consistent-hash-session': { vnodesPerWeight: 4 },
}

describe('every picker, with keys and LLM prompts (properties)', () => {
  for (const name of pickerNames()) {
    const definition = PICKERS[name]!

    it(`${name}: a retry walk visits every eligible endpoint exactly once, then returns undefined`, () => {
      fc.assert(
        fc.property(
          weights,
          fc.array(fc.record({ text: prompt, keep: fc.boolean() }), {
            minLength: 1,
            maxLength: 6,
          }),
          fc.integer(),
          (ws, requests, seed) => {
            const clock = createManualClock()
            const picker = createFromDefinition(definition, FAST_OPTIONS[name] ?? {}, {
              clock,
              random: createSeededRandom(seed),
            })
            const eligible = makeEndpoints(ws, 'e', clock)
            const leases: Lease[] = []
            try {
              for (const request of requests) {
                const tried = new Set<string>()
                for (let attempt = 0; attempt < eligible.length; attempt++) {
                  const picked = picker.pick(eligible, keyedContext(request.text, attempt, tried))
                  assert.ok(
                    picked !== undefined,
                    `attempt ${attempt}: nothing, ${eligible.length - attempt} left`,
                  )
                  assert.ok(
                    eligible.includes(picked),
                    `attempt ${attempt}: ${picked.id} is not eligible`,
                  )
                  assert.ok(!tried.has(picked.id), `attempt ${attempt}: revisited ${picked.id}`)
                  tried.add(picked.id)
                }
                const last = keyedContext(request.text, eligible.length, tried)
                assert.equal(picker.pick(eligible, last), undefined)
                // The request lands on its first choice and stays in flight, so load builds up.
                const first = picker.pick(eligible, keyedContext(request.text, 0))!
                if (request.keep) leases.push(first.begin())
                clock.advance(7)
              }
            } finally {
              for (const lease of leases) lease.end({ ok: true, latencyMs: 20 })
            }
          },
        ),
        PROPERTY_RUNS,
      )
    })

    it(`${name}: two instances with the same seed, clock and requests make the same picks`, () => {
      fc.assert(
        fc.property(
          weights,
          fc.array(
            fc.record({ text: prompt, hold: fc.boolean(), release: fc.boolean(), ms: fc.nat(50) }),
            { minLength: 1, maxLength: 12 },
          ),
          fc.integer(),
          (ws, steps, seed) => {
            const run = (): string[] => {
              const clock = createManualClock()
              const picker = createFromDefinition(definition, FAST_OPTIONS[name] ?? {}, {
                clock,
                random: createSeededRandom(seed),
              })
              const eligible = makeEndpoints(ws, 'e', clock)
              return drive(picker, eligible, steps, (ms) => clock.advance(ms))
            }
            assert.deepEqual(run(), run())
          },
        ),
        PROPERTY_RUNS,
      )
    })
  }
})

/** Picks for each step, holding and releasing leases and moving the clock as the step says. */
function drive(
  picker: Picker,
  eligible: readonly Endpoint[],
  steps: readonly { text: string; hold: boolean; release: boolean; ms: number }[],
  advance: (ms: number) => void,
): string[] {
  const picks: string[] = []
  const leases: Lease[] = []
  for (const step of steps) {
    const picked = picker.pick(eligible, keyedContext(step.text, 0))
    picks.push(picked?.id ?? '-')
    if (picked !== undefined && step.hold) leases.push(picked.begin())
    advance(step.ms)
    if (step.release) leases.shift()?.end({ ok: true, latencyMs: 5 + step.ms })
  }
  for (const lease of leases) lease.end({ ok: true, latencyMs: 10 })
  return picks
}

describe('hashing pickers keep their mapping across snapshot copies (property)', () => {
  const hashing = [
    ['consistent-hash', { algorithm: 'maglev', tableSize: 1009 }],
    ['consistent-hash', { algorithm: 'ring', vnodesPerWeight: 16 }],
    ['ip-hash', { tableSize: 4099 }],
    ['consistent-hash-session', { vnodesPerWeight: 8 }],
  ] as const

  for (const [name, options] of hashing) {
    it(`${name} (${JSON.stringify(options)}): a new array of the same members, in any order, maps every key the same`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 8 }),
          fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 40 }),
          fc.integer(),
          (ws, keys, seed) => {
            const eligible = makeEndpoints(ws)
            // A fresh array in a shuffled order, and a fresh picker: another process, or a reload.
            const shuffled = fc.sample(
              fc.shuffledSubarray([...eligible], { minLength: ws.length }),
              {
                seed,
                numRuns: 1,
              },
            )[0]!
            const a = createFromDefinition(PICKERS[name]!, options)
            const b = createFromDefinition(PICKERS[name]!, options)
            const copy = snapshot(shuffled)
            for (const key of keys) {
              const ctx: PickContext = {
                attempt: 0,
                hashKey: key,
                clientIp: key,
              }
              const first = a.pick(eligible, ctx)
              assert.equal(a.pick(snapshot(eligible), ctx), first)
              assert.equal(b.pick(copy, ctx), first)
            }
          },
        ),
        { seed: 20_250_302, numRuns: 100 },
      )
    })
  }
})
