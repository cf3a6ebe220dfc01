import type { AdmissionQueueOptions, AdmissionRequest } from './admission-types.ts'
import { ENTRY_ORDER_NAMES, type EntryOrderName } from './entry-order.ts'
import { createQueuedEntry, type QueuedEntry } from './queued-entry.ts'

const MIB = 1024 * 1024

/** AdmissionQueueOptions with every default applied and every value checked. */
export interface AdmissionSettings {
  readonly maxEntries: number
  readonly maxBytes: number
  readonly defaultMaxWaitMs: number
  readonly order: EntryOrderName
  readonly maxBypassMs: number
  readonly agingFraction: number
  readonly maxScan: number
  readonly rateHalfLifeMs: number
  readonly fairShareEviction: boolean
  readonly weightOf: (tenant: string) => number
}

/** Applies the defaults; throws a RangeError naming the first bad option. */
export function resolveAdmissionOptions(options: AdmissionQueueOptions): AdmissionSettings {
  const settings = {
    maxEntries: options.maxEntries ?? 1024,
    maxBytes: options.maxBytes ?? 256 * MIB,
    defaultMaxWaitMs: options.defaultMaxWaitMs ?? 30_000,
    order: options.order ?? 'fifo',
    maxBypassMs: options.maxBypassMs ?? 5_000,
    agingFraction: options.agingFraction ?? 0.5,
    maxScan: options.maxScan ?? 64,
    rateHalfLifeMs: options.rateHalfLifeMs ?? 10_000,
    fairShareEviction: options.fairShareEviction ?? true,
  }
  requireThat(
    Number.isInteger(settings.maxEntries) && settings.maxEntries > 0,
    'maxEntries',
    settings.maxEntries,
  )
  requireThat(settings.maxBytes >= 0, 'maxBytes', settings.maxBytes)
  requireThat(settings.defaultMaxWaitMs > 0, 'defaultMaxWaitMs', settings.defaultMaxWaitMs)
  requireThat(ENTRY_ORDER_NAMES.includes(settings.order), 'order', settings.order)
  requireThat(settings.maxBypassMs >= 0, 'maxBypassMs', settings.maxBypassMs)
  requireThat(
    settings.agingFraction > 0 && settings.agingFraction <= 1,
    'agingFraction',
    settings.agingFraction,
  )
  requireThat(
    Number.isInteger(settings.maxScan) && settings.maxScan > 0,
    'maxScan',
    settings.maxScan,
  )
  requireThat(
    settings.rateHalfLifeMs > 0 && Number.isFinite(settings.rateHalfLifeMs),
    'rateHalfLifeMs',
    settings.rateHalfLifeMs,
  )
  // A Map, not the record itself: a tenant named `constructor` must not find Object's.
  const weights = new Map(Object.entries(options.tenantWeights ?? {}))
  for (const [tenant, weight] of weights) {
    requireThat(Number.isFinite(weight) && weight > 0, `tenantWeights.${tenant}`, weight)
  }
  return { ...settings, weightOf: (tenant) => weights.get(tenant) ?? 1 }
}

/** Checks a request and builds its entry; a malformed one is a caller bug: RangeError. */
export function buildEntry<T>(
  request: AdmissionRequest<T>,
  nowMs: number,
  seq: number,
  settings: AdmissionSettings,
): QueuedEntry<T> {
  const priority = request.priority ?? 0
  const sizeBytes = request.sizeBytes ?? 0
  const predictedCost = request.predictedCost ?? 1
  requireThat(Number.isSafeInteger(priority), 'priority', priority)
  requireThat(Number.isFinite(sizeBytes) && sizeBytes >= 0, 'sizeBytes', sizeBytes)
  // Fair share charges predictedCost: a zero cost would let a tenant be served forever for free.
  requireThat(Number.isFinite(predictedCost) && predictedCost > 0, 'predictedCost', predictedCost)
  requireThat(!Number.isNaN(request.deadlineMs), 'deadlineMs', request.deadlineMs)
  requireThat(!Number.isNaN(request.maxWaitMs), 'maxWaitMs', request.maxWaitMs)
  const deadlineMs =
    request.deadlineMs === undefined && request.maxWaitMs === undefined
      ? nowMs + settings.defaultMaxWaitMs
      : Math.min(
          request.deadlineMs ?? Number.POSITIVE_INFINITY,
          nowMs + (request.maxWaitMs ?? Number.POSITIVE_INFINITY),
        )
  return createQueuedEntry({
    value: request.value,
    priority,
    tenant: request.tenant ?? '',
    sizeBytes,
    predictedCost,
    sheddable: request.sheddable ?? priority < 0,
    enqueuedAtMs: nowMs,
    deadlineMs,
    seq,
    urgentAtMs: Math.min(
      nowMs + settings.maxBypassMs,
      nowMs + settings.agingFraction * (deadlineMs - nowMs),
    ),
  })
}

function requireThat(ok: boolean, name: string, value: unknown): void {
  if (!ok) throw new RangeError(`admission queue: invalid ${name}: ${String(value)}`)
}
