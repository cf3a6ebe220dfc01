import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PICKERS, pickerNames } from '../../src/balancer/picker-registry.ts'
import { type PickerConformanceOptions, runPickerConformance } from './picker.conformance.ts'

// With 20 requests in flight a weight-1 endpoint's cap is ceil(1.25 * 20 * 1/10) = 3 against a
// mean of 2, so it spills a few percent of its keys to heavier endpoints. That is the point of
// the cap; the unit tests check the cap itself.
const bounded = { loadedShareTolerance: 0.15 } as const

/**
 * How each registered policy is expected to behave. A policy registered without an entry here
 * fails, so every new picker is held to the shared contract.
 */
const CONFORMANCE: Readonly<Record<string, readonly PickerConformanceOptions[]>> = {
  'round-robin': [{ weighted: false, hashed: undefined }],
  'weighted-round-robin': [{ weighted: true, hashed: undefined }],
  random: [{ weighted: true, hashed: undefined }],
  'least-request': [
    { weighted: true, hashed: undefined, loadAware: true },
    {
      weighted: true,
      hashed: undefined,
      loadAware: true,
      policyOptions: { choiceCount: 3 },
      label: 'choiceCount 3',
    },
  ],
  'least-connections': [{ weighted: false, hashed: undefined, loadAware: true }],
  'weighted-least-connections': [{ weighted: true, hashed: undefined, loadAware: true }],
  'least-response-time': [
    { weighted: true, hashed: undefined, loadAware: true },
    {
      weighted: true,
      hashed: undefined,
      loadAware: true,
      policyOptions: { explorationShare: 0 },
      label: 'no exploration',
    },
  ],
  'ip-hash': [
    { weighted: true, hashed: 'ip' },
    {
      weighted: true,
      hashed: 'ip',
      ...bounded,
      policyOptions: { boundedLoadFactor: 1.25 },
      label: 'bounded load',
    },
  ],
  'consistent-hash': [
    { weighted: true, hashed: 'key', ...bounded },
    { weighted: true, hashed: 'key', policyOptions: { boundedLoadFactor: 0 }, label: 'unbounded' },
    // Ring balance is about 1/sqrt(points): 4096 points per weight keeps shares within 5%.
    {
      weighted: true,
      hashed: 'key',
      ...bounded,
      policyOptions: { algorithm: 'ring', vnodesPerWeight: 4096 },
      label: 'ring',
    },
  ],
  // LLM baselines: without `ctx.llm` (as here) each falls back to its own non-prefix rule.
  // Without an LLM request aya places by least-request, so the generic checks see P2C.
  aya: [{ weighted: true, hashed: undefined, loadAware: true }],
  'sglang-cache-aware': [{ weighted: false, hashed: undefined, loadAware: true }],
  'llm-d-prefix-load': [{ weighted: false, hashed: undefined }],
  'llm-d-sticky': [{ weighted: false, hashed: undefined, loadAware: true }],
  'vllm-prefix-aware': [{ weighted: false, hashed: undefined }],
  'consistent-hash-session': [
    // A 160-point ring is within about 1/sqrt(160) of its shares, too coarse for ±5%.
    {
      weighted: true,
      hashed: 'key',
      idleProportional: false,
      loadedShareTolerance: 0.25,
      label: 'default 160-point ring',
    },
    {
      weighted: true,
      hashed: 'key',
      policyOptions: { vnodesPerWeight: 4096 },
      label: 'dense ring',
    },
    { weighted: true, hashed: 'key', policyOptions: { algorithm: 'maglev' }, label: 'maglev' },
  ],
}

describe('picker registry coverage', () => {
  it('has conformance expectations for every registered policy', () => {
    const missing = pickerNames().filter((name) => !Object.hasOwn(CONFORMANCE, name))
    assert.deepEqual(missing, [], `add these policies to CONFORMANCE: ${missing.join(', ')}`)
  })

  it('lists no expectations for unregistered policies', () => {
    const stale = Object.keys(CONFORMANCE).filter((name) => !Object.hasOwn(PICKERS, name))
    assert.deepEqual(stale, [])
  })
})

for (const name of pickerNames()) {
  for (const options of CONFORMANCE[name] ?? []) runPickerConformance(PICKERS[name]!, options)
}
