/**
 * The engine step-time model of `research/vllm-sim.md` §3.5:
 *
 *   T_step_ms = overhead + max(memBase + memPerCtx·ΣC + memPerSeq·D,  cmpPerPrefill·P + cmpPerSeq·D)
 *
 * ΣC is the total context of the decoding sequences, D the number of decoding sequences and P the
 * prefill tokens in the step. The first term is weight and KV reads (memory-bound), the second
 * GEMM compute (compute-bound).
 */
export interface StepTimeCoefficients {
  readonly overheadMs: number
  readonly memoryBaseMs: number
  readonly memoryPerContextTokenMs: number
  readonly memoryPerDecodeSeqMs: number
  readonly computePerPrefillTokenMs: number
  readonly computePerDecodeSeqMs: number
}

export interface StepShape {
  readonly prefillTokens: number
  readonly decodeSeqs: number
  readonly decodeContextTokens: number
}

export function stepTimeMs(c: StepTimeCoefficients, shape: StepShape): number {
  const memoryMs =
    c.memoryBaseMs +
    c.memoryPerContextTokenMs * shape.decodeContextTokens +
    c.memoryPerDecodeSeqMs * shape.decodeSeqs
  const computeMs =
    c.computePerPrefillTokenMs * shape.prefillTokens + c.computePerDecodeSeqMs * shape.decodeSeqs
  return c.overheadMs + Math.max(memoryMs, computeMs)
}
