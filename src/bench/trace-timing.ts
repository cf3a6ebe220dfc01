import type { Random } from '../util/random.ts'

/** A `--window START:END`, in seconds after the trace's first request. */
export interface TraceWindow {
  readonly startS: number
  readonly endS: number
}

/** Parses `START:END` (seconds, END > START ≥ 0); undefined when malformed. */
export function parseWindow(text: string): TraceWindow | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(text)
  if (!m) return undefined
  const startS = Number(m[1])
  const endS = Number(m[2])
  return endS > startS ? { startS, endS } : undefined
}

/** Exponential gaps at `ratePerSecond`: a Poisson arrival process, starting at 0. */
export function poissonArrivalsMs(count: number, ratePerSecond: number, random: Random): number[] {
  const out: number[] = []
  let atMs = 0
  for (let i = 0; i < count; i++) {
    out.push(atMs)
    // 1 − u is in (0, 1], so the log is finite.
    atMs += (-Math.log(1 - random()) / ratePerSecond) * 1000
  }
  return out
}

/**
 * Spreads each run of equal timestamps evenly over the gap to the next distinct timestamp: k
 * requests at t before t' arrive at t + i·(t' − t)/k. The last run uses the gap before it.
 * Input must be sorted; order is kept.
 */
export function spreadBuckets(timesMs: readonly number[]): number[] {
  const out = timesMs.slice()
  let lastGapMs = 0
  let i = 0
  while (i < timesMs.length) {
    const t = timesMs[i]!
    let j = i
    while (j < timesMs.length && timesMs[j] === t) j++
    const next = timesMs[j]
    const gapMs = next === undefined ? lastGapMs : next - t
    const count = j - i
    for (let k = 0; k < count; k++) out[i + k] = t + (k * gapMs) / count
    if (next !== undefined) lastGapMs = gapMs
    i = j
  }
  return out
}

/** Indices of the times in `[startS, endS)` seconds after `originMs`. */
export function windowIndices(
  timesMs: readonly number[],
  originMs: number,
  window: TraceWindow | undefined,
): number[] {
  const out: number[] = []
  for (const [i, t] of timesMs.entries()) {
    const offsetMs = t - originMs
    if (!window || (offsetMs >= window.startS * 1000 && offsetMs < window.endS * 1000)) out.push(i)
  }
  return out
}
