import { z } from 'zod'

/**
 * The `priorities` config: named priority classes and the header that picks one. Higher is served
 * first; with `sheddable: negative`, priorities below 0 may be shed under saturation.
 *
 * ```yaml
 * priorities:
 *   header: x-priority
 *   classes: { interactive: 0, batch: -1 }
 *   default: interactive
 *   sheddable: negative
 * ```
 */
const classPriority = z
  .number({ error: 'expected an integer priority' })
  .int({ error: 'expected an integer priority' })
  .min(-1_000_000, { error: 'expected a priority of at least -1000000' })
  .max(1_000_000, { error: 'expected a priority of at most 1000000' })

const DEFAULT_CLASS = 'interactive'

export const prioritiesSchema = z
  .object({
    header: z
      .string({ error: 'expected a header name' })
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected a header name' })
      .transform((name) => name.toLowerCase())
      .default('x-priority'),
    classes: z
      .record(
        z.string().regex(/^[A-Za-z][\w.-]*$/, {
          error: 'class names start with a letter and hold letters, digits, _ . -',
        }),
        classPriority,
      )
      .refine((classes) => Object.keys(classes).length > 0, {
        error: 'expected at least one class',
      })
      .default({ interactive: 0, batch: -1 }),
    default: z.string({ error: 'expected a class name' }).default(DEFAULT_CLASS),
    sheddable: z
      .enum(['negative', 'never'], { error: 'expected negative or never' })
      .default('negative'),
  })
  .strict()
  .superRefine((config, ctx) => {
    const names = Object.keys(config.classes)
    // No classes is its own issue; a default checked against none would only repeat it.
    if (names.length === 0 || Object.hasOwn(config.classes, config.default)) return
    // Left out, `default` is "interactive": classes without one need it named.
    const implied =
      config.default === DEFAULT_CLASS ? ` (the default "${DEFAULT_CLASS}" is not one)` : ''
    ctx.addIssue({
      code: 'custom',
      path: ['default'],
      message: `expected one of priorities.classes: ${names.join(', ')}${implied}`,
    })
  })

export type PrioritiesConfig = z.output<typeof prioritiesSchema>

export interface ResolvedPriority {
  readonly priority: number
  readonly sheddable: boolean
  /** The class with exactly this priority, else the priority as a string (a bounded set). */
  readonly className: string
}

/**
 * The priority a request asked for in the configured header.
 *
 * - Absent or empty: `fallback` (the route's priority, a class name or an integer) when given,
 *   else the default class.
 * - Repeated: the header arrives as one comma-joined list, and its first item counts.
 * - A class name (exact, then case-insensitive): that class.
 * - An integer, of any length: clamped to the range the classes span. A client can thus pick a
 *   level between classes but cannot rise above the highest class the operator defined, nor
 *   create an unbounded number of bands (and metric labels) by sending arbitrary numbers.
 * - Anything else, such as an unknown name: as if absent. A typo must neither fail the request
 *   nor promote it; the operator chose what unlabelled traffic on that route gets.
 */
export function resolvePriority(
  headerValue: string | undefined,
  config: PrioritiesConfig,
  fallback?: string | number | undefined,
): ResolvedPriority {
  const comma = headerValue?.indexOf(',') ?? -1
  const asked = parse(comma < 0 ? headerValue : headerValue!.slice(0, comma), config)
  if (asked !== undefined) return asked
  const routed =
    typeof fallback === 'number' ? byNumber(fallback + 0, config) : parse(fallback, config)
  return routed ?? withClass(config.default, defaultPriority(config), config)
}

/** The priority of requests that name none and whose route names none: the default class's. */
export function defaultPriority(config: PrioritiesConfig): number {
  return config.classes[config.default]!
}

/** Whether a route's `priority` string names a class or an integer, as `resolvePriority` reads. */
export function isPriorityName(value: string, config: PrioritiesConfig): boolean {
  return parse(value, config) !== undefined
}

function parse(raw: string | undefined, config: PrioritiesConfig): ResolvedPriority | undefined {
  const value = raw?.trim() ?? ''
  if (value === '') return undefined
  // A string of digits always reads as a number (Infinity past ~309 digits), which the clamp
  // bounds: a long one cannot slip past it.
  if (/^[+-]?\d+$/.test(value)) return byNumber(Number(value) + 0, config)
  const named = classNamed(value, config)
  return named === undefined ? undefined : withClass(named, config.classes[named]!, config)
}

function classNamed(value: string, config: PrioritiesConfig): string | undefined {
  if (Object.hasOwn(config.classes, value)) return value
  const lower = value.toLowerCase()
  return Object.keys(config.classes).find((name) => name.toLowerCase() === lower)
}

function byNumber(requested: number, config: PrioritiesConfig): ResolvedPriority {
  const levels = Object.values(config.classes)
  const priority = Math.min(Math.max(requested, Math.min(...levels)), Math.max(...levels))
  const className = Object.keys(config.classes).find((name) => config.classes[name] === priority)
  return withClass(className ?? String(priority), priority, config)
}

function withClass(
  className: string,
  priority: number,
  config: PrioritiesConfig,
): ResolvedPriority {
  return { priority, sheddable: config.sheddable === 'negative' && priority < 0, className }
}
