import type { PickerDefinition } from './picker-definition.ts'
import { ayaPicker } from './pickers/aya.ts'
import { consistentHashPicker } from './pickers/consistent-hash.ts'
import { consistentHashSessionPicker } from './pickers/consistent-hash-session.ts'
import { ipHashPicker } from './pickers/ip-hash.ts'
import { leastConnectionsPicker } from './pickers/least-connections.ts'
import { leastRequestPicker } from './pickers/least-request.ts'
import { leastResponseTimePicker } from './pickers/least-response-time.ts'
import { llmdPrefixLoadPicker } from './pickers/llm-d-prefix-load.ts'
import { llmdStickyPicker } from './pickers/llm-d-sticky.ts'
import { randomPicker } from './pickers/random.ts'
import { roundRobinPicker } from './pickers/round-robin.ts'
import { sglangCacheAwarePicker } from './pickers/sglang-cache-aware.ts'
import { vllmPrefixAwarePicker } from './pickers/vllm-prefix-aware.ts'
import { weightedLeastConnectionsPicker } from './pickers/weighted-least-connections.ts'
import { weightedRoundRobinPicker } from './pickers/weighted-round-robin.ts'

/** Every policy selectable in config, by name. */
export const PICKERS: Readonly<Record<string, PickerDefinition>> = {
  [roundRobinPicker.name]: roundRobinPicker,
  [weightedRoundRobinPicker.name]: weightedRoundRobinPicker,
  [randomPicker.name]: randomPicker,
  [leastRequestPicker.name]: leastRequestPicker,
  [leastConnectionsPicker.name]: leastConnectionsPicker,
  [weightedLeastConnectionsPicker.name]: weightedLeastConnectionsPicker,
  [ipHashPicker.name]: ipHashPicker,
  [consistentHashPicker.name]: consistentHashPicker,
  [leastResponseTimePicker.name]: leastResponseTimePicker,
  // LLM routing baselines, faithful to their published designs (docs/llm-routing.md).
  [sglangCacheAwarePicker.name]: sglangCacheAwarePicker,
  [llmdPrefixLoadPicker.name]: llmdPrefixLoadPicker,
  [llmdStickyPicker.name]: llmdStickyPicker,
  [vllmPrefixAwarePicker.name]: vllmPrefixAwarePicker,
  [consistentHashSessionPicker.name]: consistentHashSessionPicker,
  // Aya's own LLM scheduler (docs/llm-routing.md).
  [ayaPicker.name]: ayaPicker,
}

export function pickerNames(): string[] {
  return Object.keys(PICKERS).sort()
}

export function findPicker(name: string): PickerDefinition | undefined {
  return Object.hasOwn(PICKERS, name) ? PICKERS[name] : undefined
}
