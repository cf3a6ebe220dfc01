import type { z } from 'zod'
import type { Picker, PickerDeps } from './picker.ts'

/**
 * A policy as config sees it: a name, the schema of its `policyOptions`, and a factory.
 * Options are validated once at config load, so `create` receives parsed, defaulted options.
 */
export interface PickerDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string
  /**
   * What the policy makes of the upstream's `hashKey` selector: it needs one, it falls back to one
   * (a request with no session key of its own), or it ignores it, in which case configuring one is
   * a mistake the config check reports.
   */
  readonly hashKey: 'required' | 'fallback' | 'ignored'
  /** True when the policy reads engines' scraped `/metrics`; Aya then scrapes even if unconfigured. */
  readonly usesEngineMetrics?: boolean
  readonly optionsSchema: S
  create(options: z.output<S>, deps: PickerDeps): Picker
}

export function definePicker<S extends z.ZodType>(
  definition: PickerDefinition<S>,
): PickerDefinition<S> {
  return definition
}
