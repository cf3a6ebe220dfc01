// The wire format of `load-peers.ts`: one JSON message per flush on `load:<upstream>`, checked
// before anything in it is used.

/**
 * One endpoint's counts in a message: id, inflight, prefill tokens, prefill requests, KV tokens,
 * prefills done, and of the prefill tokens those sent to the engine (absent from a replica of
 * before it was added).
 */
export type LoadEntry = [string, number, number, number, number, number, number?]

export interface LoadMessage {
  readonly op: 'load'
  readonly loads: readonly LoadEntry[]
}

/** Fractional charges can leave a count a rounding error below zero; nothing else is sent. */
export function tokenCount(tokens: number): number {
  return Number.isFinite(tokens) && tokens > 0 ? tokens : 0
}

/** More tokens than any fleet holds: a count past it is not from a replica. */
const MAX_TOKENS = 1e12
const MAX_ID_CHARS = 256

export function parseLoads(value: unknown): readonly LoadEntry[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const message = value as Record<string, unknown>
  if (message.op !== 'load' || !Array.isArray(message.loads)) return undefined
  const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0
  const isTokens = (n: unknown) => typeof n === 'number' && n >= 0 && n <= MAX_TOKENS
  for (const entry of message.loads as unknown[]) {
    if (
      !Array.isArray(entry) ||
      (entry.length !== 6 && entry.length !== 7) ||
      typeof entry[0] !== 'string' ||
      entry[0].length > MAX_ID_CHARS ||
      !isCount(entry[1]) ||
      !isTokens(entry[2]) ||
      !isCount(entry[3]) ||
      !isTokens(entry[4]) ||
      !isCount(entry[5]) ||
      (entry.length === 7 && !isTokens(entry[6]))
    ) {
      return undefined
    }
  }
  return message.loads as LoadEntry[]
}
