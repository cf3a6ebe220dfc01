import { readEngineMetrics } from '../../src/llm/engine-metrics-parse.ts'
import type { EngineSnapshot } from '../../src/llm/engine-snapshot.ts'

/** The snapshot a page gives, or undefined where `readEngineMetrics` refuses it. */
export function parseEngineMetrics(text: string, atMs: number): EngineSnapshot | undefined {
  const reading = readEngineMetrics(text, atMs)
  return 'snapshot' in reading ? reading.snapshot : undefined
}
