// `npm run bench:hot-paths`: scaling of the data structures that once went quadratic. Each case
// runs at n and 2n on one machine in one process and prints the time ratio: about 2 means linear,
// about 4 means quadratic. Then the per-request cost of the prompt-token counter and the output
// predictor (docs/llm-routing.md). Timings stay here, out of the tests, because shared machines
// are noisy.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createDesPubSub } from '../src/bench/des-pubsub.ts'
import { percentile, sortedNumbers } from '../src/bench/percentiles.ts'
import { type LlmParseResult, parseLlmBody, toLlmRequest } from '../src/llm/llm-body.ts'
import type { LlmApi } from '../src/llm/llm-request.ts'
import { createLruNumberSet } from '../src/llm/lru-number-set.ts'
import {
  createOutputLengthPredictor,
  type OutputLengthKey,
} from '../src/llm/output-length-predictor.ts'
import { hashPromptBlocks } from '../src/llm/prefix-block-index.ts'
import { createPromptTokenCounter } from '../src/llm/prompt-token-counter.ts'
import { findCookie, findQueryParam } from '../src/proxy/key-selector.ts'
import { Endpoint } from '../src/upstream/endpoint.ts'
import { createLoadPeers } from '../src/upstream/load-peers.ts'
import { createManualClock } from '../src/util/manual-clock.ts'
import { createSeededRandom } from '../src/util/random.ts'

interface Case {
  readonly name: string
  readonly unit: string
  run(n: number): void
}

const cases: readonly Case[] = [
  {
    name: 'LRU refresh churn (capacity n, 1.2n distinct values, 40 rounds)',
    unit: 'touches',
    run(n) {
      const lru = createLruNumberSet(n)
      for (let round = 0; round < 40; round++)
        for (let v = 0; v < 1.2 * n; v += 1) lru.touch(v * 7 + (round % 3))
      if (lru.size !== n) throw new Error('LRU lost values')
    },
  },
  {
    name: 'Cookie scan (n crumbs without =, then the key)',
    unit: 'crumbs',
    run(n) {
      const header = `${'x;'.repeat(n)}session=v`
      if (findCookie(header, 'session') !== 'v') throw new Error('cookie not found')
    },
  },
  {
    name: 'Query scan (n pairs without =, then the key)',
    unit: 'pairs',
    run(n) {
      const path = `/v1/chat?${'x&'.repeat(n)}user=v`
      if (findQueryParam(path, 'user') !== 'v') throw new Error('query parameter not found')
    },
  },
]

function bestOfMs(run: () => void, tries: number): number {
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < tries; i++) {
    const started = performance.now()
    run()
    best = Math.min(best, performance.now() - started)
  }
  return best
}

const n = Number(process.argv[2] ?? 50_000)
console.log(`| Case | n | time at n (ms) | time at 2n (ms) | 2n ÷ n |`)
console.log(`|---|---|---|---|---|`)
for (const c of cases) {
  c.run(n) // warm up the JIT before timing
  const atN = bestOfMs(() => c.run(n), 5)
  const at2N = bestOfMs(() => c.run(2 * n), 5)
  console.log(
    `| ${c.name} | ${n} ${c.unit} | ${atN.toFixed(1)} | ${at2N.toFixed(1)} | ${(at2N / atN).toFixed(2)} |`,
  )
}

// Per-request cost. The prompts are 10,000-character slices of this repository's own docs
// (markdown) and src (TypeScript), read at the commit being measured. Each slice is counted once
// in a timed run, so a run sees text it has not counted before; the two runs of one vocabulary
// use alternate slices, and gpt-tokenizer's merge cache carries over from one run to the next,
// as it does between requests. The README is counted once, untimed, before the runs.

const PROMPT_CHARS = 10_000
const root = join(import.meta.dirname, '..')

function corpus(dir: string, suffix: string): string {
  const files = readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(suffix))
    .sort()
  return files.map((file) => readFileSync(join(root, dir, file), 'utf8')).join('\n\n')
}

function slices(text: string): string[] {
  const out: string[] = []
  for (let at = 0; at + PROMPT_CHARS <= text.length; at += PROMPT_CHARS)
    out.push(text.slice(at, at + PROMPT_CHARS))
  return out
}

function quantile(values: readonly number[], q: number): number {
  return percentile(sortedNumbers(values), q)
}

/** Milliseconds per call of `count` over each text, one call each. */
function timeEach(texts: readonly string[], count: (text: string) => number): number[] {
  return texts.map((text) => {
    const started = performance.now()
    if (!(count(text) > 0)) throw new Error('no tokens counted')
    return performance.now() - started
  })
}

/** Microseconds per call, one sample per batch of `batch` calls, after one untimed batch. */
function timeBatches(batches: number, batch: number, call: (i: number) => number): number[] {
  let sink = 0
  for (let i = 0; i < batch; i++) sink += call(i)
  const samples: number[] = []
  for (let b = 0; b < batches; b++) {
    const started = performance.now()
    for (let i = 0; i < batch; i++) sink += call(b * batch + i)
    samples.push(((performance.now() - started) * 1000) / batch)
  }
  if (Number.isNaN(sink)) throw new Error('bad result')
  return samples
}

const p50p90 = (values: readonly number[], digits: number) =>
  `${quantile(values, 0.5).toFixed(digits)} / ${quantile(values, 0.9).toFixed(digits)}`

// A seeded generator, so every run sees the same requests.
const random = createSeededRandom(1)

// Loading a vocabulary: the first `count` for an OpenAI model pays it (or `warmUp`, at start).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const counter = createPromptTokenCounter()
const exact = createPromptTokenCounter({ maxExactChars: Number.MAX_SAFE_INTEGER })
console.log('')
console.log(
  '| Vocabulary load (first use, warmUp) | time (ms) | heap used after GC, after − before (MB) | heap total, after − before (MB) |',
)
console.log('|---|---|---|---|')
for (const [encoding, model] of [
  ['o200k_base', 'gpt-4o'],
  ['cl100k_base', 'gpt-4'],
] as const) {
  gc()
  const before = process.memoryUsage()
  const started = performance.now()
  counter.warmUp(model)
  const loadMs = performance.now() - started
  exact.warmUp(model)
  gc()
  const after = process.memoryUsage()
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0)
  console.log(
    `| ${encoding} (${model}) | ${loadMs.toFixed(0)} | ${mb(after.heapUsed - before.heapUsed)} | ${mb(after.heapTotal - before.heapTotal)} |`,
  )
}
// One untimed count of the README per vocabulary, so the timed runs do not pay for the JIT.
const readme = readFileSync(join(root, 'README.md'), 'utf8')
for (const model of ['gpt-4o', 'gpt-4']) exact.count(model, readme) + counter.count(model, readme)

const texts = {
  markdown: slices(corpus('docs', '.md')),
  TypeScript: slices(corpus('src', '.ts')),
}
console.log('')
console.log(
  '| 10 kB prompt (`count`) | prompts per run | whole text, p50 / p90 (ms) | sampled (default), p50 / p90 (ms) | sampled error, median / max |',
)
console.log('|---|---|---|---|---|')
for (const [kind, all] of Object.entries(texts)) {
  const forWhole = all.filter((_, i) => i % 2 === 0)
  const forSampled = all.filter((_, i) => i % 2 === 1)
  for (const [encoding, model] of [
    ['o200k', 'gpt-4o'],
    ['cl100k', 'gpt-4'],
  ] as const) {
    const whole = timeEach(forWhole, (text) => exact.count(model, text))
    const sampled = timeEach(forSampled, (text) => counter.count(model, text))
    const errors = forSampled.map((text) => {
      const truth = exact.count(model, text)
      return (Math.abs(counter.count(model, text) - truth) / truth) * 100
    })
    console.log(
      `| ${kind}, ${encoding} | ${forSampled.length} | ${p50p90(whole, 2)} | ${p50p90(sampled, 2)} | ${quantile(errors, 0.5).toFixed(1)} % / ${Math.max(...errors).toFixed(1)} % |`,
    )
  }
}

// The output predictor, trained first on 20,000 responses over 4 models × 8 routes, prompt
// lengths 50–16,000 tokens and four caps (none among them), then asked about the same mix.
const predictor = createOutputLengthPredictor()
const keys: OutputLengthKey[] = []
for (let m = 0; m < 4; m++)
  for (let r = 0; r < 8; r++) keys.push({ model: `model-${m}`, route: `route-${r}` })
const caps = [256, 1024, 4096, undefined] as const
interface Request {
  readonly key: OutputLengthKey
  readonly promptTokens: number
  readonly maxTokens: number | undefined
  readonly outputTokens: number
}
const requests: Request[] = []
for (let i = 0; i < 1 << 16; i++) {
  const maxTokens = caps[Math.floor(random() * caps.length)]
  const output = Math.round(Math.exp(Math.log(20) + 1.5 * Math.log(1 / random())))
  requests.push({
    key: keys[Math.floor(random() * keys.length)] ?? { model: 'm', route: 'r' },
    promptTokens: Math.round(50 * 320 ** random()),
    maxTokens,
    outputTokens: Math.min(output, maxTokens ?? output),
  })
}
const requestAt = (i: number) => requests[i & (requests.length - 1)] as Request
for (let i = 0; i < 20_000; i++) {
  const r = requestAt(i)
  predictor.observe(r.key, r.promptTokens, r.maxTokens, r.outputTokens)
}
const estimated = texts.markdown
console.log('')
console.log('| Per-call case | calls per sample × samples | µs per call, p50 / p90 |')
console.log('|---|---|---|')
console.log(
  `| count, estimated model (llama-3.1-8b), 10 kB | 100,000 × 30 | ${p50p90(
    timeBatches(30, 100_000, (i) =>
      counter.count('llama-3.1-8b', estimated[i % estimated.length] ?? 'x'),
    ),
    3,
  )} |`,
)
// The `aya` policy's prefix blocks of a 32 kB prompt (512 blocks of 64 characters), four
// distinct prompts in turn so no result is reused.
const longPrompts = [0, 1, 2, 3].map((i) =>
  estimated
    .slice(i * 4, i * 4 + 4)
    .join('')
    .slice(0, 32_768),
)
console.log(
  `| prefix blocks of a 32 kB prompt (hashPromptBlocks) | 1,000 × 30 | ${p50p90(
    timeBatches(30, 1_000, (i) => hashPromptBlocks(longPrompts[i % 4]!, 'm', 64, 8192).length),
    1,
  )} |`,
)
console.log(
  `| output predictor: predict | 10,000 × 30 | ${p50p90(
    timeBatches(30, 10_000, (i) => {
      const r = requestAt(i)
      return predictor.predict(r.key, r.promptTokens, r.maxTokens).mean
    }),
    2,
  )} |`,
)
console.log(
  `| output predictor: observe | 10,000 × 30 | ${p50p90(
    timeBatches(30, 10_000, (i) => {
      const r = requestAt(i + 20_000)
      predictor.observe(r.key, r.promptTokens, r.maxTokens, r.outputTokens)
      return r.outputTokens
    }),
    2,
  )} |`,
)

// Router-side accounting of one request (begin, first token, end, one request a millisecond),
// alone and with the in-flight work of three other replicas heard and announced to them
// (docs/llm-routing.md, "Router replicas share their in-flight work").
const accountingClock = createManualClock()
const spec = { id: 'e0', url: 'http://e0', origin: 'http://e0', weight: 1 }
const leaseOf = (endpoint: Endpoint) => {
  const lease = endpoint.begin({ prefillTokens: 1000, kvTokens: 1200 })
  lease.firstToken()
  accountingClock.advance(1)
  lease.end({ ok: true, status: 200, latencyMs: 1 })
  return endpoint.inflight
}
const alone = new Endpoint(spec, { clock: accountingClock })
const pubsub = createDesPubSub({ delayMs: 1 }, { clock: accountingClock })
const sharing = createLoadPeers(
  { channel: 'load:fleet' },
  { state: pubsub, clock: accountingClock },
)
const shared = new Endpoint(spec, { clock: accountingClock, onLoadChange: sharing.changed })
sharing.listen({ find: () => shared })
for (let replica = 0; replica < 3; replica++) {
  const other = createLoadPeers(
    { channel: 'load:fleet' },
    { state: pubsub, clock: accountingClock },
  )
  new Endpoint(spec, { clock: accountingClock, onLoadChange: other.changed }).begin({
    prefillTokens: 100,
  })
}
accountingClock.advance(10)
console.log(
  `| accounting of one request, one replica | 10,000 × 30 | ${p50p90(
    timeBatches(30, 10_000, () => leaseOf(alone)),
    2,
  )} |`,
)
console.log(
  `| accounting of one request, sharing with 3 replicas | 10,000 × 30 | ${p50p90(
    timeBatches(30, 10_000, () => leaseOf(shared)),
    2,
  )} |`,
)

// The largest body an LLM route takes by default (16 MiB), in shapes that are cheap to send and
// costly to understand: the event loop is blocked for all of it, JSON.parse (V8's, bounded only by
// maxBodyBytes) and then Aya's own reading of the prompt (parseLlmBody, then counting its tokens).
const MAX_BODY = 16 * 2 ** 20
const fill = <T>(bytesEach: number, make: (i: number) => T): T[] =>
  Array.from({ length: Math.floor((MAX_BODY - 200) / bytesEach) }, (_, i) => make(i))
const bodies: ReadonlyArray<readonly [string, LlmApi, () => unknown]> = [
  [
    'chat, one word of 16M letters',
    'openai.chat',
    () => ({
      messages: [
        {
          role: 'user',
          content: 'a'
            .repeat(MAX_BODY - 200)
            .split('')
            .join(''),
        },
      ],
    }),
  ],
  [
    'chat, 560k one-letter messages',
    'openai.chat',
    () => ({
      messages: fill(30, () => ({ role: 'user', content: 'a' })),
    }),
  ],
  [
    'completions, 2.4M token ids',
    'openai.completions',
    () => ({
      prompt: fill(7, (i) => 100_000 + (i % 99_999)),
    }),
  ],
  [
    'embeddings, 4M one-id prompts',
    'openai.embeddings',
    () => ({ input: fill(4, (i) => [i % 10]) }),
  ],
  [
    'responses, 420k reasoning items',
    'openai.responses',
    () => ({
      input: fill(40, (i) => ({ type: 'reasoning', id: `r${i}` })),
    }),
  ],
]
console.log('')
console.log('| 16 MiB body | JSON.parse (ms) | parseLlmBody + count, gpt-4o (ms) |')
console.log('|---|---|---|')
for (const [name, api, make] of bodies) {
  const json = Buffer.from(JSON.stringify({ model: 'gpt-4o', ...(make() as object) }))
  gc()
  let started = performance.now()
  const value: unknown = JSON.parse(json.toString('utf8'))
  const parseMs = performance.now() - started
  started = performance.now()
  const parsed: LlmParseResult = parseLlmBody(api, value)
  if (!parsed.ok) throw new Error(parsed.message)
  toLlmRequest(api, parsed.value, 'gpt-4o', undefined, counter.count)
  const understandMs = performance.now() - started
  console.log(`| ${name} | ${parseMs.toFixed(0)} | ${understandMs.toFixed(0)} |`)
}
