import { createRequire } from 'node:module'
import { createSegmentedLruMap } from '../util/segmented-lru-map.ts'

/**
 * Prompt tokens as the upstream will bill them, before dispatch.
 *
 * - OpenAI families get the real BPE tokenizer (`gpt-tokenizer`): o200k_base for gpt-4o, gpt-4.1,
 *   gpt-4.5, gpt-5, gpt-oss and the o-series; cl100k_base for gpt-4 and gpt-3.5. The vocabulary is
 *   loaded synchronously on first use (about 150 ms and 14 MB of heap for o200k;
 *   docs/benchmarks.md), so `warmUp` exists to pay that at startup instead of on the first request.
 * - Every other model gets characters ÷ characters-per-token. The ratio starts at 4 and is corrected
 *   online from the `usage.prompt_tokens` the upstream reports, per model, because a Llama or Qwen
 *   tokenizer on code or on CJK text is far from 4 (note §8, char/token skew).
 */
export interface PromptTokenCounter {
  count(model: string, text: string): number
  /**
   * Feeds back what the upstream counted for a prompt of `promptChars` characters. Only models
   * without a known tokenizer learn from it: an exact count needs no correction.
   */
  observe(model: string, promptChars: number, actualPromptTokens: number): void
  /** The characters per token an estimated model is counted with now. */
  charsPerToken(model: string): number
  /** The tokenizer a model is counted with, or undefined when it is estimated. */
  encodingFor(model: string): TokenizerEncoding | undefined
  /** Loads the model's tokenizer now, if it has one, so the first request does not wait for it. */
  warmUp(model: string): void
  /** Models with a learned ratio (bounded by `maxModels`). */
  readonly trackedModels: number
}

export type TokenizerEncoding = 'o200k_base' | 'cl100k_base'

/** The part of a gpt-tokenizer encoding module the counter uses. */
export interface TokenCountingEncoding {
  countTokens(text: string, options?: { readonly disallowedSpecial?: ReadonlySet<string> }): number
}

export interface PromptTokenCounterOptions {
  /** The ratio an estimated model starts from. Default 4. */
  readonly defaultCharsPerToken?: number
  /**
   * Models whose learned ratio is kept. A model is protected once `protectAfterSamples` responses
   * have reported its usage; the rest share a quarter of the room, least recently used forgotten,
   * so a flood of one-off model names cannot make a model in steady use forget. Default 256.
   */
  readonly maxModels?: number
  /** Usage reports after which a model's ratio is protected. Default 8. */
  readonly protectAfterSamples?: number
  /** Observations after which an old one counts half. Default 64. */
  readonly halfLifeSamples?: number
  /** How much the default ratio weighs, in prompt tokens, before any observation. Default 256. */
  readonly priorTokens?: number
  /**
   * Text longer than this is not tokenised whole: 8 chunks totalling this many characters, spread
   * from head to tail, are, and the rest is counted at their ratio (median error about 2 %).
   * Default 4096: 10 kB costs about 0.5–0.7 ms sampled, against 1–2 ms counted whole
   * (docs/benchmarks.md).
   */
  readonly maxExactChars?: number
  /** Use the real tokenizer for OpenAI model names. Default true. */
  readonly useTokenizers?: boolean
}

export interface PromptTokenCounterDeps {
  /** Loads an encoding; tests and the bench may swap it. Default: gpt-tokenizer, on first use. */
  readonly loadEncoding?: (encoding: TokenizerEncoding) => TokenCountingEncoding
}

/** A per-sample ratio outside this range is clamped, so one image-heavy prompt cannot swing a model. */
const MIN_CHARS_PER_TOKEN = 0.5
const MAX_CHARS_PER_TOKEN = 16

/** Chunks a long prompt is sampled in; see `countExact`. */
const SAMPLE_CHUNKS = 8

/** A model's learned ratio: decayed sums of observed characters and tokens, seeded with the prior. */
interface Calibration {
  chars: number
  tokens: number
}

// Special-token strings such as `<|endoftext|>` in user text are counted as text, never rejected.
const COUNT_AS_TEXT = { disallowedSpecial: new Set<string>() } as const

const O200K = /^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o[1-9](?:$|-)|codex-)/
const CL100K = /^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)/

/**
 * The OpenAI tokenizer a model name implies. Provider prefixes (`openai/gpt-4o`) and fine-tune
 * names (`ft:gpt-4o-mini:org::id`) resolve to their base model.
 */
export function openAiEncodingFor(model: string): TokenizerEncoding | undefined {
  let name = model.toLowerCase()
  const slash = name.lastIndexOf('/')
  if (slash >= 0) name = name.slice(slash + 1)
  if (name.startsWith('ft:')) name = name.slice(3)
  if (O200K.test(name)) return 'o200k_base'
  if (CL100K.test(name)) return 'cl100k_base'
  return undefined
}

/** gpt-tokenizer's CommonJS entry points load synchronously, so `count` never awaits. */
export function loadGptTokenizerEncoding(encoding: TokenizerEncoding): TokenCountingEncoding {
  const requireCjs = createRequire(import.meta.url)
  return requireCjs(`gpt-tokenizer/encoding/${encoding}`) as TokenCountingEncoding
}

/** Longest run of characters without whitespace that BPE sees whole (see `countInRuns`). */
const MAX_RUN_CHARS = 256

/**
 * The text's tokens, with each whitespace-free run longer than MAX_RUN_CHARS counted in pieces of
 * that size. BPE merges within a word cost about the square of its length: one 4,096-character
 * run took 10 ms (63 ms for a repeated letter) where prose of that length takes 0.5. A cut inside
 * a run costs at most a token or so each.
 */
function countInRuns(encoder: TokenCountingEncoding, text: string): number {
  let tokens = 0
  let counted = 0
  let runStart = 0
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 32
    if (code !== 32 && code !== 10 && code !== 9 && code !== 13) continue
    if (i - runStart > MAX_RUN_CHARS) {
      if (runStart > counted)
        tokens += encoder.countTokens(text.slice(counted, runStart), COUNT_AS_TEXT)
      for (let at = runStart; at < i; at += MAX_RUN_CHARS) {
        tokens += encoder.countTokens(
          text.slice(at, Math.min(i, at + MAX_RUN_CHARS)),
          COUNT_AS_TEXT,
        )
      }
      counted = i
    }
    runStart = i + 1
  }
  if (counted === 0) return encoder.countTokens(text, COUNT_AS_TEXT)
  return counted < text.length
    ? tokens + encoder.countTokens(text.slice(counted), COUNT_AS_TEXT)
    : tokens
}

export function createPromptTokenCounter(
  options: PromptTokenCounterOptions = {},
  deps: PromptTokenCounterDeps = {},
): PromptTokenCounter {
  const defaultCpt = options.defaultCharsPerToken ?? 4
  const maxModels = Math.max(2, options.maxModels ?? 256)
  const decay = 2 ** (-1 / (options.halfLifeSamples ?? 64))
  const priorTokens = options.priorTokens ?? 256
  const maxExactChars = Math.max(SAMPLE_CHUNKS, options.maxExactChars ?? 4096)
  const useTokenizers = options.useTokenizers ?? true
  const loadEncoding = deps.loadEncoding ?? loadGptTokenizerEncoding
  const encoders = new Map<TokenizerEncoding, TokenCountingEncoding>()
  // Only usage the upstream reported creates a calibration: counting a prompt for a name that
  // nothing answered for keeps no state, so it can evict nothing.
  const calibrations = createSegmentedLruMap<Calibration>({
    maxEntries: maxModels,
    promoteAfterUses: options.protectAfterSamples ?? 8,
  })
  const newCalibration = (): Calibration => ({
    chars: priorTokens * defaultCpt,
    tokens: priorTokens,
  })
  // The encoding of the model counted last: one model's traffic runs the regexes once.
  let lastModel: string | undefined
  let lastEncoding: TokenizerEncoding | undefined
  const encodingOf = (model: string): TokenizerEncoding | undefined => {
    if (model !== lastModel) {
      lastModel = model
      lastEncoding = useTokenizers ? openAiEncodingFor(model) : undefined
    }
    return lastEncoding
  }

  const encoderFor = (encoding: TokenizerEncoding): TokenCountingEncoding => {
    let encoder = encoders.get(encoding)
    if (encoder === undefined) {
      encoder = loadEncoding(encoding)
      encoders.set(encoding, encoder)
    }
    return encoder
  }

  const chunkChars = Math.max(1, Math.floor(maxExactChars / SAMPLE_CHUNKS))
  const countExact = (encoder: TokenCountingEncoding, text: string): number => {
    if (text.length <= maxExactChars) return countInRuns(encoder, text)
    // BPE cost grows with length and with unseen words: 10 kB of fresh prose takes about 2 ms (8 ms
    // at p90), which at 1k requests/s would be more than the whole event loop. So long text is sampled: chunks spread
    // evenly from head to tail are tokenised exactly and the rest is counted at their ratio.
    // Spreading the sample matters: system prompt, documents and code differ in ratio, and head
    // plus tail alone missed by up to 28 % on mixed markdown. A word cut at a chunk edge costs ±1.
    const stride = (text.length - chunkChars) / (SAMPLE_CHUNKS - 1)
    let sampled = 0
    for (let i = 0; i < SAMPLE_CHUNKS; i++) {
      const start = Math.round(i * stride)
      sampled += encoder.countTokens(text.slice(start, start + chunkChars), COUNT_AS_TEXT)
    }
    const sampledChars = SAMPLE_CHUNKS * chunkChars
    return sampled + Math.round(((text.length - sampledChars) * sampled) / sampledChars)
  }

  const ratioOf = (state: Calibration | undefined): number =>
    state === undefined ? defaultCpt : state.chars / state.tokens

  return {
    count(model, text) {
      if (text.length === 0) return 0
      const encoding = encodingOf(model)
      if (encoding !== undefined) return countExact(encoderFor(encoding), text)
      return Math.max(1, Math.ceil(text.length / ratioOf(calibrations.peek(model))))
    },
    observe(model, promptChars, actualPromptTokens) {
      if (!(promptChars > 0) || !(actualPromptTokens > 0)) return
      if (encodingOf(model) !== undefined) return
      const state = calibrations.use(model, newCalibration)
      const ratio = Math.min(
        MAX_CHARS_PER_TOKEN,
        Math.max(MIN_CHARS_PER_TOKEN, promptChars / actualPromptTokens),
      )
      // A ratio of decayed sums, not a mean of ratios: long prompts, where the error costs most,
      // weigh most, and a three-word prompt dominated by template tokens barely moves it.
      state.chars = state.chars * decay + promptChars
      state.tokens = state.tokens * decay + promptChars / ratio
    },
    charsPerToken: (model) => ratioOf(calibrations.peek(model)),
    encodingFor(model) {
      return useTokenizers ? openAiEncodingFor(model) : undefined
    },
    warmUp(model) {
      const encoding = useTokenizers ? openAiEncodingFor(model) : undefined
      if (encoding !== undefined) encoderFor(encoding)
    },
    get trackedModels() {
      return calibrations.size
    },
  }
}
