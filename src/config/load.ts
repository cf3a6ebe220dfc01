import { readFile } from 'node:fs/promises'
import {
  isCollection,
  isNode,
  isScalar,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml'
import { isRecord } from '../util/is-record.ts'
import type { ConfigIssue } from './config-error.ts'
import { ConfigError, describeValue, toConfigIssues } from './config-error.ts'
import { safeParseWithEnvNumbers } from './env-numbers.ts'
import { type Env, substituteEnv } from './env-substitution.ts'
import { type Config, configSchema } from './schema.ts'
import { validateConfig } from './validate.ts'

/** Reads, substitutes, validates and freezes a config file. Throws ConfigError with every issue. */
export async function loadConfigFile(file: string, env: Env): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new ConfigError([
      { path: '', message: `cannot read ${file}: ${(error as Error).message}` },
    ])
  }
  return parseConfigText(text, env, file)
}

/** `source` names the text in the message of an empty one, such as the file it was read from. */
export function parseConfigText(text: string, env: Env, source = 'the config'): Config {
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter })
  if (document.errors.length > 0) {
    throw new ConfigError(document.errors.map((error) => ({ path: '', message: wording(error) })))
  }
  // The parser leaves aliases and keys to toJS, which names an unknown alias but not where it is,
  // and turns a key that is not text into text without a word.
  const issues: ConfigIssue[] = []
  const at = (node: { range?: readonly number[] | null | undefined }) => {
    const { line, col } = lineCounter.linePos(node.range?.[0] ?? 0)
    return `line ${line}, column ${col}`
  }
  visit(document, {
    Alias(_key, alias) {
      if (alias.resolve(document) !== undefined) return
      issues.push({
        path: '',
        message: `unknown alias *${alias.source} at ${at(alias)}: no &${alias.source} anchor before it`,
      })
    },
    Pair(_key, pair) {
      const problem = isNode(pair.key) ? keyProblem(pair.key, at(pair.key)) : undefined
      if (problem !== undefined) issues.push({ path: '', message: problem })
    },
  })
  if (issues.length > 0) throw new ConfigError(issues)
  let raw: unknown
  try {
    raw = document.toJS()
  } catch (error) {
    // Such as too many aliases expanded (a "billion laughs" document).
    throw new ConfigError([{ path: '', message: (error as Error).message }])
  }
  // Empty, only comments, or `null`: each required section would be reported missing instead.
  if (raw === null || raw === undefined) {
    throw new ConfigError([
      { path: '', message: `${source} is empty: it needs listeners, routes and upstreams` },
    ])
  }
  return parseConfigObject(raw, env)
}

/**
 * Why a mapping key would not reach the config as written, or undefined. Every key Aya reads is a
 * name, and toJS turns any other key into text: a plain `1.0` (an upstream or model named so)
 * into "1", `~` into "", a list into "[ a, b ]", with nothing to say the name changed.
 */
function keyProblem(key: unknown, where: string): string | undefined {
  if (isCollection(key)) return `the key at ${where} is a list or mapping: a key must be a name`
  if (!isScalar(key) || typeof key.value === 'string') return undefined
  const source = key.source ?? ''
  const read = key.value === null ? '' : String(key.value)
  if (read === source) return undefined
  const as = key.value === null ? 'null, an empty key' : `the ${typeof key.value} ${read}`
  return `key ${source} at ${where} is read as ${as}: quote it ("${source}") to keep it as written`
}

/** The parser's message, less its advice to programmers (`please use YAML.parseAllDocuments()`). */
function wording(error: YAMLError): string {
  if (error.code !== 'MULTIPLE_DOCS') return error.message
  return error.message.replace(
    /^Source contains multiple documents[^\n]*? at line/,
    'a config file holds one YAML document, but another one starts at line',
  )
}

export function parseConfigObject(raw: unknown, env: Env): Config {
  // A scalar or a list: the schema would say "expected object" of the whole file, with no path.
  if (raw !== null && raw !== undefined && !isRecord(raw)) {
    throw new ConfigError([
      {
        path: '',
        message: `expected a mapping with listeners, routes and upstreams at the top of the config, got ${Array.isArray(raw) ? 'a list' : 'a scalar'}: ${describeValue(raw)}`,
      },
    ])
  }
  const issues: ConfigIssue[] = []
  const decimalPaths = new Set<string>()
  const substituted = substituteEnv(raw ?? {}, env, issues, decimalPaths)
  // An unset variable explains whatever the schema would say about that value; report it alone.
  if (issues.length > 0) throw new ConfigError(issues)
  const parsed = safeParseWithEnvNumbers(configSchema, substituted, decimalPaths)
  if (!parsed.success) {
    issues.push(...toConfigIssues(parsed.error.issues, substituted))
    throw new ConfigError(issues)
  }
  const config = validateConfig(parsed.data, issues, decimalPaths)
  if (issues.length > 0) throw new ConfigError(issues)
  return deepFreeze(config)
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}
