import type { PickerDefinition } from './picker-definition.ts'
import { roundRobinPicker } from './pickers/round-robin.ts'

/** Every policy selectable in config, by name. */
export const PICKERS: Readonly<Record<string, PickerDefinition>> = {
  [roundRobinPicker.name]: roundRobinPicker,
}

export function pickerNames(): string[] {
  return Object.keys(PICKERS).sort()
}

export function findPicker(name: string): PickerDefinition | undefined {
  return Object.hasOwn(PICKERS, name) ? PICKERS[name] : undefined
}
