// `npm run bench:hot-paths`: scaling of the data structures that once went quadratic. Each case
// runs at n and 2n on one machine in one process and prints the time ratio: about 2 means linear,
// about 4 means quadratic. Timings stay here, out of the tests, because shared machines are noisy.
import { performance } from 'node:perf_hooks'
import { createLruNumberSet } from '../src/llm/lru-number-set.ts'
import { findCookie, findQueryParam } from '../src/proxy/key-selector.ts'

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
