import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { createModelRegistry } from '../../../src/llm/model-registry.ts'

const models = {
  'llama-3.1-8b': {
    aliases: ['llama'],
    loras: ['sql-lora'],
    deployments: [{ upstream: 'a', model: 'meta-llama/Llama-3.1-8B-Instruct' }],
  },
  'gpt-4o*': { aliases: [], loras: [], deployments: [{ upstream: 'b' }] },
  'gpt-*': { aliases: [], loras: [], deployments: [{ upstream: 'c', model: 'gpt-generic' }] },
}

describe('model registry', () => {
  const registry = createModelRegistry(models)

  test('resolves an exact name to its deployment and served name', () => {
    assert.deepEqual(registry.resolve('llama-3.1-8b'), {
      upstream: 'a',
      servedModel: 'meta-llama/Llama-3.1-8B-Instruct',
      canonical: 'llama-3.1-8b',
    })
  })

  test('resolves an alias like its model, and a LoRA adapter under its own name', () => {
    assert.equal(registry.resolve('llama')?.servedModel, 'meta-llama/Llama-3.1-8B-Instruct')
    assert.deepEqual(registry.resolve('sql-lora'), {
      upstream: 'a',
      servedModel: 'sql-lora',
      canonical: 'llama-3.1-8b',
    })
  })

  test('lists the LoRA adapters an upstream’s engines must serve, and none for an upstream without', () => {
    assert.deepEqual(registry.loraAdapters('a'), ['sql-lora'])
    assert.deepEqual(registry.loraAdapters('b'), [])
  })

  test('prefers the most specific wildcard and keeps the requested name unless one is set', () => {
    assert.deepEqual(registry.resolve('gpt-4o-mini'), {
      upstream: 'b',
      servedModel: 'gpt-4o-mini',
      canonical: 'gpt-4o*',
    })
    assert.deepEqual(registry.resolve('gpt-5'), {
      upstream: 'c',
      servedModel: 'gpt-generic',
      canonical: 'gpt-*',
    })
  })

  test('resolves nothing for an unknown model and lists concrete names apart from patterns', () => {
    assert.equal(registry.resolve('mistral'), undefined)
    assert.deepEqual(registry.names(), ['llama', 'llama-3.1-8b', 'sql-lora'])
    assert.deepEqual(registry.patterns(), ['gpt-*', 'gpt-4o*'])
  })

  test('resolves aliases and LoRA adapters declared on a wildcard entry', () => {
    const wild = createModelRegistry({
      'claude-*': { aliases: ['claude'], loras: ['claude-lora'], deployments: [{ upstream: 'x' }] },
      'qwen-*': {
        aliases: ['qwen'],
        loras: [],
        deployments: [{ upstream: 'y', model: 'Qwen/Qwen3' }],
      },
    })
    // No served name to rewrite to: the alias goes upstream as sent, like a wildcard match.
    assert.deepEqual(wild.resolve('claude'), {
      upstream: 'x',
      servedModel: 'claude',
      canonical: 'claude-*',
    })
    assert.deepEqual(wild.resolve('claude-lora'), {
      upstream: 'x',
      servedModel: 'claude-lora',
      canonical: 'claude-*',
    })
    assert.deepEqual(wild.resolve('qwen'), {
      upstream: 'y',
      servedModel: 'Qwen/Qwen3',
      canonical: 'qwen-*',
    })
    assert.deepEqual(wild.names(), ['claude', 'claude-lora', 'qwen'])
  })

  /** A config with one upstream, `a`, and these models, through config validation. */
  const parseModels = (models: Record<string, unknown>) =>
    parseConfigObject(
      {
        listeners: [{ name: 'l', port: 8080 }],
        routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
        upstreams: { a: { endpoints: [{ url: 'http://127.0.0.1:1' }] } },
        models,
      },
      {},
    )

  test('rejects an alias that names another model, in config validation', () => {
    assert.throws(
      () =>
        parseModels({
          x: { aliases: ['y'], deployments: [{ upstream: 'a' }] },
          y: { deployments: [{ upstream: 'ghost' }] },
        }),
      (error: Error) => {
        assert.match(error.message, /models\.x\.aliases\[0\]: "y" is already a name of model "y"/)
        assert.match(
          error.message,
          /models\.y\.deployments\[0\]\.upstream: unknown upstream "ghost"/,
        )
        return true
      },
    )
  })

  test('rejects a LoRA adapter that is also the model’s own name or alias, which would never reach the adapter', () => {
    assert.throws(
      () =>
        parseModels({
          x: { aliases: ['short'], loras: ['short', 'x'], deployments: [{ upstream: 'a' }] },
        }),
      (error: Error) => {
        assert.match(
          error.message,
          /models\.x\.loras\[0\]: "short" is both a LoRA adapter of model "x" and its alias/,
        )
        assert.match(
          error.message,
          /models\.x\.loras\[1\]: "x" is both a LoRA adapter of model "x" and its own name/,
        )
        return true
      },
    )
    // An alias repeated, or equal to the model's own name, is redundant but resolves as meant.
    assert.doesNotThrow(() =>
      parseModels({ x: { aliases: ['x', 'y', 'y'], deployments: [{ upstream: 'a' }] } }),
    )
  })

  test('rejects a * in an alias or adapter name: only a model’s own name may be a pattern', () => {
    assert.throws(
      () =>
        parseModels({
          x: { aliases: ['x-*'], loras: ['sql-*'], deployments: [{ upstream: 'a' }] },
        }),
      (error: Error) => {
        assert.match(error.message, /models\.x\.aliases\[0\]: "x-\*" may not hold a \*/)
        assert.match(error.message, /models\.x\.loras\[0\]: "sql-\*" may not hold a \*/)
        return true
      },
    )
  })
})
