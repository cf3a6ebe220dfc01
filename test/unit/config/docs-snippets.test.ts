import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { parseDocument } from 'yaml'
import { ConfigError } from '../../../src/config/config-error.ts'
import { parseConfigObject } from '../../../src/config/load.ts'
import { configSchema } from '../../../src/config/schema.ts'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const TOP_LEVEL_KEYS = new Set(Object.keys(configSchema.shape))

interface Snippet {
  readonly where: string
  readonly text: string
}

/** Every ```yaml block of README.md and docs/*.md, with the file and line it starts at. */
async function yamlSnippets(): Promise<Snippet[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((name) => name.endsWith('.md'))
  const files = ['README.md', ...docs.map((name) => join('docs', name))]
  const snippets: Snippet[] = []
  for (const file of files) {
    const text = await readFile(join(ROOT, file), 'utf8')
    for (const match of text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, match.index).split('\n').length
      snippets.push({ where: `${file}:${line}`, text: match[1]! })
    }
  }
  return snippets
}

type Raw = Record<string, unknown>

/**
 * A snippet shows the keys it is about and leaves out the rest: given a listener, an endpoint
 * where it elides them (`endpoints: [...]`, or none), and a route where it has none, it is a
 * whole config.
 */
function completed(snippet: Raw): Raw {
  const config: Raw = { listeners: [{ name: 'docs', port: 0 }], ...snippet }
  const upstreams = (config.upstreams ?? { api: {} }) as Record<string, Raw>
  for (const upstream of Object.values(upstreams)) {
    const endpoints = upstream.endpoints
    const elided =
      !Array.isArray(endpoints) || endpoints.some((e) => typeof e !== 'object' || e === null)
    if (upstream.sim === undefined && elided) {
      upstream.endpoints = [{ url: 'http://127.0.0.1:9001' }]
    }
  }
  config.upstreams = upstreams
  config.routes ??= [{ match: { pathPrefix: '/' }, upstream: Object.keys(upstreams)[0] }]
  return config
}

describe('the YAML snippets in the docs', () => {
  test('parse as written and, completed with what they leave out, are accepted by the loader', async () => {
    const snippets = await yamlSnippets()
    assert.ok(snippets.length >= 5, `found only ${snippets.length} snippets`)
    for (const { where, text } of snippets) {
      const document = parseDocument(text, { uniqueKeys: true })
      assert.deepEqual(
        document.errors.map((error) => error.message),
        [],
        `${where} is not valid YAML`,
      )
      const snippet = document.toJS() as Raw
      const unknown = Object.keys(snippet).filter((key) => !TOP_LEVEL_KEYS.has(key))
      assert.deepEqual(unknown, [], `${where} is not a fragment of a config file`)
      try {
        parseConfigObject(completed(snippet), {})
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error))
        assert.fail(`${where} is refused:\n${error.message}`)
      }
    }
  })
})
