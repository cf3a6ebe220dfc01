import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, test } from 'node:test'

const ROOT = join(import.meta.dirname, '..', '..')
const SRC = join(ROOT, 'src')

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path))
    else if (name.endsWith('.ts')) out.push(path)
  }
  return out
}

const files = sourceFiles(SRC).map((path) => ({
  path: relative(ROOT, path),
  text: readFileSync(path, 'utf8'),
}))

function importsOf(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1]!)
}

function resolveArea(fromPath: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined
  const target = relative(SRC, join(ROOT, fromPath, '..', specifier))
  return target.split('/')[0]
}

function areaOf(path: string): string {
  return relative('src', path).split('/')[0]!
}

/** area → areas it must never import */
const FORBIDDEN: Record<string, readonly string[]> = {
  balancer: ['proxy', 'admin', 'observability', 'sim', 'bench', 'providers'],
  health: ['proxy', 'admin', 'observability', 'sim', 'bench'],
  resilience: ['proxy', 'admin', 'observability', 'sim', 'bench'],
  llm: ['admin', 'observability', 'sim', 'bench'],
  state: ['proxy', 'balancer', 'llm', 'admin', 'observability', 'sim', 'bench'],
  upstream: ['proxy', 'balancer', 'llm', 'admin', 'sim', 'bench'],
  util: [
    'proxy',
    'balancer',
    'llm',
    'admin',
    'observability',
    'sim',
    'bench',
    'config',
    'state',
    'upstream',
  ],
  proxy: ['admin', 'sim', 'bench'],
  filters: ['admin', 'sim', 'bench'],
  // config reads the sim's profile table (plain data) to validate `upstreams.<n>.sim`.
  config: ['admin', 'bench'],
  sim: [
    'proxy',
    'balancer',
    'llm',
    'filters',
    'admin',
    'bench',
    'providers',
    'health',
    'resilience',
  ],
}

describe('layering', () => {
  test('no module imports an area its layer forbids', () => {
    const violations: string[] = []
    for (const file of files) {
      const forbidden = FORBIDDEN[areaOf(file.path)] ?? []
      for (const specifier of importsOf(file.text)) {
        const area = resolveArea(file.path, specifier)
        if (area && forbidden.includes(area)) violations.push(`${file.path} imports ${specifier}`)
      }
    }
    assert.deepEqual(violations, [])
  })

  test('policies, health and resilience never import prom-client: they publish on channels', () => {
    const offenders = files
      .filter((f) => ['balancer', 'health', 'resilience', 'llm', 'proxy'].includes(areaOf(f.path)))
      .filter((f) => importsOf(f.text).includes('prom-client'))
      .map((f) => f.path)
    assert.deepEqual(offenders, [])
  })

  test('decision code never reads Date.now() or Math.random()', () => {
    const offenders = files
      .filter((f) => ['balancer', 'health', 'resilience', 'llm'].includes(areaOf(f.path)))
      .filter((f) => /Date\.now\(\)|Math\.random\(\)/.test(f.text))
      .map((f) => f.path)
    assert.deepEqual(offenders, [])
  })

  test('no code outside src/sim and src/bench reads x-aya-sim-* headers', () => {
    const offenders = files
      .filter((f) => !['sim', 'bench'].includes(areaOf(f.path)))
      .filter((f) => /x-aya-sim-/i.test(f.text))
      .map((f) => f.path)
    assert.deepEqual(offenders, [])
  })

  test('nothing has side effects at import: no top-level listen, setInterval or connect', () => {
    const topLevelCall = /^(?:await |void )?\S*\.(listen|connect)\(|^setInterval\(|^setTimeout\(/gm
    // Code inside a template literal (a script handed to another process) is not run at import.
    const insideTemplate = (text: string, at: number) =>
      (text.slice(0, at).split('`').length - 1) % 2 === 1
    const offenders = files
      .filter((f) =>
        [...f.text.matchAll(topLevelCall)].some((m) => !insideTemplate(f.text, m.index)),
      )
      .map((f) => f.path)
    assert.deepEqual(offenders, [])
  })
})
