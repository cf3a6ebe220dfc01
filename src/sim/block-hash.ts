import { hashKey32, mix32 } from '../util/hash.ts'

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
const LANE_A = 0x5eed_0001
const LANE_B = 0x5eed_0002
const TOKEN_SEPARATOR = 0x20

/** A 53-bit hash (a safe integer) of a string: two independent 32-bit hashes, combined. */
export function hash53(text: string): number {
  return combine(hashKey32(text, LANE_A), hashKey32(text, LANE_B))
}

function combine(high: number, low: number): number {
  return (high & 0x1f_ffff) * 0x1_0000_0000 + (low >>> 0)
}

/** Chains a block's hash to its parent's, as vLLM's prefix cache does: equal hash ⇒ equal prefix. */
export function chainBlockHash(parentHash: number | undefined, blockText: string): number {
  return hash53(`${parentHash ?? 'root'}\u0001${blockText}`)
}

/** A prompt's length and prefix-cache identity. */
export interface PromptIdentity {
  readonly promptTokens: number
  /** Chained hashes of every full block of the prompt. Equal token prefixes give equal hashes. */
  readonly promptBlockHashes: readonly number[]
  /** A hash of the whole prompt, partial tail included: seeds the hashes of generated blocks. */
  readonly promptHash: number
}

/** Hashes a token stream block by block in one pass, without building token strings. */
export interface PromptHasher {
  /** Adds one token: the characters of `text` from `start` to `end`. */
  token(text: string, start?: number, end?: number): void
  identity(): PromptIdentity
}

export function createPromptHasher(blockSizeTokens = 16): PromptHasher {
  const hashes: number[] = []
  let a = 0
  let b = 0
  let inBlock = 0
  let count = 0

  const feed = (code: number): void => {
    a = Math.imul(a ^ code, FNV_PRIME)
    b = Math.imul(b ^ code, FNV_PRIME)
  }
  const startBlock = (parent: number | undefined): void => {
    a = (FNV_OFFSET ^ LANE_A) >>> 0
    b = (FNV_OFFSET ^ LANE_B) >>> 0
    if (parent === undefined) return
    const high = Math.floor(parent / 0x1_0000_0000)
    const low = parent >>> 0
    for (const v of [high & 0xffff, high >>> 16, low & 0xffff, low >>> 16]) feed(v)
    feed(1)
  }
  const digest = (): number => combine(mix32(a), mix32(b))
  startBlock(undefined)

  return {
    token(text, start = 0, end = text.length) {
      if (inBlock > 0) feed(TOKEN_SEPARATOR)
      for (let i = start; i < end; i++) feed(text.charCodeAt(i))
      inBlock++
      count++
      if (inBlock === blockSizeTokens) {
        const hash = digest()
        hashes.push(hash)
        startBlock(hash)
        inBlock = 0
      }
    },
    identity() {
      feed(2)
      for (const v of [count & 0xffff, count >>> 16]) feed(v)
      return { promptTokens: count, promptBlockHashes: hashes.slice(), promptHash: digest() }
    },
  }
}

/** The identity of a token sequence (full blocks hashed, partial tail only in `promptHash`). */
export function promptIdentityOf(tokens: readonly string[], blockSizeTokens = 16): PromptIdentity {
  const hasher = createPromptHasher(blockSizeTokens)
  for (const t of tokens) hasher.token(t)
  return hasher.identity()
}

/**
 * The identity of a prompt under a LoRA adapter: vLLM keys each block's hash with the adapter too,
 * so the same tokens under two adapters (or under an adapter and the base model) share no cache.
 */
export function adapterPromptIdentity(prompt: PromptIdentity, adapter: string): PromptIdentity {
  const salt = `lora\u0002${adapter}\u0002`
  return {
    promptTokens: prompt.promptTokens,
    promptBlockHashes: prompt.promptBlockHashes.map((hash) => hash53(`${salt}${hash}`)),
    promptHash: hash53(`${salt}${prompt.promptHash}`),
  }
}
