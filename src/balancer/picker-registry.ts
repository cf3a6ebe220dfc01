import type { PickerDefinition } from './picker-definition.ts'
import { consistentHashPicker } from './pickers/consistent-hash.ts'
import { ipHashPicker } from './pickers/ip-hash.ts'
import { leastConnectionsPicker } from './pickers/least-connections.ts'
import { leastRequestPicker } from './pickers/least-request.ts'
import { leastResponseTimePicker } from './pickers/least-response-time.ts'
import { randomPicker } from './pickers/random.ts'
import { roundRobinPicker } from './pickers/round-robin.ts'
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
}

export function pickerNames(): string[] {
  return Object.keys(PICKERS).sort()
}

export function findPicker(name: string): PickerDefinition | undefined {
  return Object.hasOwn(PICKERS, name) ? PICKERS[name] : undefined
}
