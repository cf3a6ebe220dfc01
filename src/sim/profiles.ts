import type { StepTimeCoefficients } from './step-time.ts'

/**
 * One simulated GPU replica: the model it serves, its vLLM engine limits and its latency model.
 * The constants come from `research/vllm-sim.md` §3.3–§3.5 and are documented, with their
 * sources, in `docs/simulator.md`.
 */
export interface EngineProfile {
  readonly name: string
  /** The served model name, as `/v1/models` lists it and requests must name it. */
  readonly modelName: string
  readonly maxModelLen: number
  readonly blockSizeTokens: number
  /** KV blocks as vLLM reports them; block 0 is vLLM's null block, so one fewer is usable. */
  readonly numGpuBlocks: number
  readonly maxNumSeqs: number
  readonly maxNumBatchedTokens: number
  readonly stepTime: StepTimeCoefficients
  /** Per-request API work before the engine sees the request: HTTP parsing and tokenising. */
  readonly requestOverheadMs: number
}

const LLAMA_31_8B = 'meta-llama/Llama-3.1-8B-Instruct'

/** Llama-3.1-8B BF16 on one H100 80 GB. */
export const H100_LLAMA3_8B: EngineProfile = Object.freeze({
  name: 'h100-llama3-8b',
  modelName: LLAMA_31_8B,
  maxModelLen: 131_072,
  blockSizeTokens: 16,
  numGpuBlocks: 26_900,
  maxNumSeqs: 1024,
  maxNumBatchedTokens: 8192,
  stepTime: Object.freeze({
    overheadMs: 1.0,
    memoryBaseMs: 6.4,
    memoryPerContextTokenMs: 5.2e-5,
    memoryPerDecodeSeqMs: 0.008,
    computePerPrefillTokenMs: 0.033,
    computePerDecodeSeqMs: 0.022,
  }),
  requestOverheadMs: 4,
})

/** Llama-3.1-8B BF16 on one A100 80 GB. */
export const A100_LLAMA3_8B: EngineProfile = Object.freeze({
  name: 'a100-llama3-8b',
  modelName: LLAMA_31_8B,
  maxModelLen: 131_072,
  blockSizeTokens: 16,
  numGpuBlocks: 27_500,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  stepTime: Object.freeze({
    overheadMs: 1.0,
    memoryBaseMs: 10.7,
    memoryPerContextTokenMs: 8.7e-5,
    memoryPerDecodeSeqMs: 0.025,
    computePerPrefillTokenMs: 0.08,
    computePerDecodeSeqMs: 0.067,
  }),
  requestOverheadMs: 4,
})

export const ENGINE_PROFILES: ReadonlyMap<string, EngineProfile> = new Map(
  [H100_LLAMA3_8B, A100_LLAMA3_8B].map((p) => [p.name, p]),
)

/**
 * The most engines one `aya sim` process (and one DES run) simulates. Each holds its own KV block
 * pool, about half a MB; far past this the bench runs out of memory rather than out of engines.
 */
export const MAX_SIM_REPLICAS = 1024

export function getEngineProfile(name: string): EngineProfile {
  const profile = ENGINE_PROFILES.get(name)
  if (!profile) {
    const known = [...ENGINE_PROFILES.keys()].join(', ')
    throw new Error(`unknown sim profile '${name}' (known: ${known})`)
  }
  return profile
}

/**
 * Parses `h100-llama3-8b` (every replica) or a counted list `h100-llama3-8b:2,a100-llama3-8b:2`
 * into one profile per replica, in order. A counted list must add up to `replicas`.
 */
export function parseProfileList(spec: string, replicas: number): EngineProfile[] {
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new Error(`replicas must be a positive integer, got ${replicas}`)
  }
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
  if (parts.length === 0) throw new Error('profile is empty')
  if (parts.length === 1 && !parts[0]!.includes(':')) {
    const profile = getEngineProfile(parts[0]!)
    return Array.from({ length: replicas }, () => profile)
  }
  const out: EngineProfile[] = []
  for (const part of parts) {
    const [name = '', countText, extra] = part.split(':')
    if (extra !== undefined) throw new Error(`bad profile entry '${part}'`)
    const count = countText === undefined ? 1 : Number(countText)
    if (!Number.isInteger(count) || count < 1) {
      throw new Error(`bad replica count in profile entry '${part}'`)
    }
    const profile = getEngineProfile(name)
    for (let i = 0; i < count; i++) out.push(profile)
  }
  if (out.length !== replicas) {
    throw new Error(
      `profile list '${spec}' describes ${out.length} replicas, but --replicas is ${replicas}`,
    )
  }
  return out
}
