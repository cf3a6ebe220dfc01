/** A JSON object: not null, not an array. Bodies and events are checked with it before use. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
