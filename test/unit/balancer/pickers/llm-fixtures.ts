import assert from 'node:assert/strict'
import type { PickContext, Picker, PickerDeps } from '../../../../src/balancer/picker.ts'
import { createAyaPicker } from '../../../../src/balancer/pickers/aya.ts'
import {
  type AyaDecision,
  ayaDecisionChannel,
} from '../../../../src/balancer/pickers/aya-decision.ts'
import { ayaOptionsSchema } from '../../../../src/balancer/pickers/aya-options.ts'
import {
  type EngineMetricsSource,
  type EngineSnapshot,
  kvLayoutOf,
} from '../../../../src/llm/engine-snapshot.ts'
import type { LlmRequest } from '../../../../src/llm/llm-request.ts'
import type { Endpoint, Lease } from '../../../../src/upstream/endpoint.ts'
import { createManualClock } from '../../../../src/util/manual-clock.ts'
import { createSeededRandom, randomInt } from '../../../../src/util/random.ts'
import { makeEndpoints } from '../../../conformance/picker-fixtures.ts'

/** An `aya` picker with these options on a manual clock, choosing with this seed. */
export function createAya(
  options: Record<string, unknown> = {},
  deps: Partial<PickerDeps> = {},
  seed = 1,
): Picker {
  return createAyaPicker(ayaOptionsSchema.parse(options), {
    clock: createManualClock(),
    random: createSeededRandom(seed),
    ...deps,
  })
}

/** An LLM request as the llm-extract filter hands it over; tokens estimated at 4 chars each. */
export function llmRequest(promptText: string, overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    api: 'openai.chat',
    model: 'llama',
    servedModel: 'llama',
    stream: true,
    maxTokens: undefined,
    promptText,
    promptTokens: Math.ceil(promptText.length / 4),
    sessionKey: undefined,
    routeKey: '',
    ...overrides,
  }
}

export function llmCtx(
  promptText: string,
  overrides: Partial<LlmRequest> = {},
  exclude?: readonly string[],
): PickContext {
  return {
    attempt: exclude === undefined ? 0 : 1,
    llm: llmRequest(promptText, overrides),
    ...(exclude === undefined ? {} : { exclude: new Set(exclude) }),
  }
}

/** `length` characters of text that no other seed shares a 64-character block with. */
export function text(seed: string, length: number): string {
  let out = ''
  for (let i = 0; out.length < length; i++) out += `${seed}:${i};`
  return out.slice(0, length)
}

/** Routes `prompt` to `target` by excluding every other endpoint, as a retry would. */
export function routeTo(
  picker: Picker,
  eligible: readonly Endpoint[],
  target: Endpoint,
  prompt: string,
  overrides: Partial<LlmRequest> = {},
): void {
  const others = eligible.filter((e) => e !== target).map((e) => e.id)
  assert.equal(picker.pick(eligible, llmCtx(prompt, overrides, others)), target)
}

export function engineMetrics(
  byId: Readonly<Record<string, Partial<EngineSnapshot>>>,
): EngineMetricsSource {
  const get = (endpointId: string): EngineSnapshot | undefined => {
    const partial = byId[endpointId]
    if (partial === undefined) return undefined
    return {
      atMs: 0,
      running: 0,
      waiting: 0,
      kvUsage: 0,
      prefixQueriesTotal: 0,
      prefixHitsTotal: 0,
      preemptionsTotal: 0,
      blockSize: undefined,
      numGpuBlocks: undefined,
      ...partial,
    }
  }
  return {
    get,
    kvLayout(endpointId) {
      const snapshot = get(endpointId)
      return snapshot && kvLayoutOf(snapshot)
    },
  }
}

export function countIds(
  picker: Picker,
  eligible: readonly Endpoint[],
  picks: number,
  ctxFor: (i: number) => PickContext,
): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < picks; i++) {
    const id = picker.pick(eligible, ctxFor(i))?.id ?? 'undefined'
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

/**
 * The conformance suite's exclusion property, with LLM requests: prompts from a few shared
 * prefixes (so matches happen), random exclusions and held leases. Never an excluded endpoint,
 * never nothing while something is left.
 */
export function assertHonoursExclusions(picker: Picker, seed = 7): void {
  const random = createSeededRandom(seed)
  const pool = makeEndpoints([1, 2, 1, 3, 1, 1])
  const prefixes = ['alpha', 'beta', 'gamma'].map((s) => text(s, 300))
  const leases: Lease[] = []
  for (let i = 0; i < 2_000; i++) {
    const members = pool.filter(() => random() < 0.8)
    const exclude = new Set(pool.filter(() => random() < 0.3).map((e) => e.id))
    const prompt = prefixes[randomInt(random, prefixes.length)]! + text(`q${i % 17}`, 100)
    const ctx: PickContext = {
      attempt: exclude.size > 0 ? 1 : 0,
      exclude,
      llm: llmRequest(prompt, {
        model: random() < 0.5 ? 'llama' : 'qwen',
        sessionKey: random() < 0.5 ? `s${i % 11}` : undefined,
      }),
    }
    const picked = picker.pick(Object.freeze(members), ctx)
    const left = members.filter((e) => !exclude.has(e.id))
    if (left.length === 0) assert.equal(picked, undefined)
    else {
      assert.ok(picked !== undefined && left.includes(picked), `picked ${picked?.id}`)
      if (random() < 0.5) leases.push(picked.begin({ prefillTokens: 50 }))
    }
    if (leases.length > 0 && random() < 0.4) leases.shift()!.end({ ok: true, latencyMs: 5 })
  }
  for (const lease of leases) lease.end({ ok: true, latencyMs: 5 })
}

/** Records every full decision the aya scheduler publishes until `stop`. */
export function recordDecisions(): { decisions: AyaDecision[]; stop(): void } {
  const decisions: AyaDecision[] = []
  const onDecision = (message: unknown) => decisions.push(message as AyaDecision)
  ayaDecisionChannel.subscribe(onDecision)
  return { decisions, stop: () => ayaDecisionChannel.unsubscribe(onDecision) }
}

/** The candidates of the one decision `pick` publishes for `ctx`. */
export function candidatesOf(picker: Picker, eligible: readonly Endpoint[], ctx: PickContext) {
  const recorder = recordDecisions()
  try {
    picker.pick(eligible, ctx)
  } finally {
    recorder.stop()
  }
  assert.equal(recorder.decisions.length, 1)
  return recorder.decisions[0]!.candidates
}
