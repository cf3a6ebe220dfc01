import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createModelRegistry } from '../../../src/llm/model-registry.ts'
import { modelsEndpointReply } from '../../../src/proxy/models-endpoint.ts'

const registry = createModelRegistry({
  'llama-3.1-8b': { aliases: ['llama'], loras: ['sql-lora'], deployments: [{ upstream: 'a' }] },
  'claude-*': { aliases: ['claude'], loras: [], deployments: [{ upstream: 'b' }] },
  'org/model': { aliases: [], loras: [], deployments: [{ upstream: 'a' }] },
})

const reply = (path: string, anthropic = false, query = '') => {
  const answer = modelsEndpointReply(registry, path, new URLSearchParams(query), anthropic)
  return answer.kind === 'found' ? JSON.parse(answer.body) : answer
}

describe('models endpoints', () => {
  test('lists concrete names in OpenAI shape, never wildcard patterns', () => {
    const list = reply('/v1/models')
    assert.equal(list.object, 'list')
    assert.deepEqual(
      list.data.map((m: { id: string }) => m.id),
      ['claude', 'llama', 'llama-3.1-8b', 'org/model', 'sql-lora'],
    )
    assert.deepEqual(list.data[0], { id: 'claude', object: 'model', created: 0, owned_by: 'aya' })
  })

  test('lists in Anthropic shape, paging with limit and after_id or before_id', () => {
    const all = reply('/v1/models', true)
    assert.equal(all.has_more, false)
    assert.equal(all.first_id, 'claude')
    assert.equal(all.last_id, 'sql-lora')
    assert.deepEqual(all.data[0], {
      type: 'model',
      id: 'claude',
      display_name: 'claude',
      created_at: '1970-01-01T00:00:00Z',
    })
    const first = reply('/v1/models', true, 'limit=2')
    assert.deepEqual([first.data.length, first.has_more, first.last_id], [2, true, 'llama'])
    const next = reply('/v1/models', true, 'limit=2&after_id=llama')
    assert.deepEqual(
      [next.first_id, next.last_id, next.has_more],
      ['llama-3.1-8b', 'org/model', true],
    )
    const last = reply('/v1/models', true, 'limit=2&after_id=org/model')
    assert.deepEqual([last.first_id, last.has_more], ['sql-lora', false])
    const before = reply('/v1/models', true, 'limit=2&before_id=org/model')
    assert.deepEqual(
      [before.first_id, before.last_id, before.has_more],
      ['llama', 'llama-3.1-8b', true],
    )
  })

  test('retrieves a model by name, alias, adapter, wildcard match or encoded slash', () => {
    assert.deepEqual(reply('/v1/models/llama'), {
      id: 'llama',
      object: 'model',
      created: 0,
      owned_by: 'aya',
    })
    assert.equal(reply('/v1/models/claude-sonnet-4', true).id, 'claude-sonnet-4')
    assert.equal(reply('/v1/models/claude-sonnet-4', true).type, 'model')
    assert.equal(reply('/v1/models/org%2Fmodel').id, 'org/model')
    assert.equal(reply('/v1/models/org/model').id, 'org/model')
  })

  test('reports ids the registry does not resolve as not found', () => {
    assert.deepEqual(reply('/v1/models/mistral'), { kind: 'unknown', id: 'mistral' })
    assert.deepEqual(reply('/v1/models/'), { kind: 'unknown', id: '' })
  })

  test('reports a wildcard match longer than a request may name as not found, as a request for it is refused', () => {
    const atBound = `claude-${'x'.repeat(249)}`
    assert.equal(reply(`/v1/models/${atBound}`).id, atBound)
    assert.deepEqual(reply(`/v1/models/${atBound}x`), { kind: 'unknown', id: `${atBound}x` })
  })

  test('refuses an Anthropic limit outside 1 to 1000; OpenAI’s list takes no parameters', () => {
    for (const limit of ['0', 'abc', '1001', '1e2', '']) {
      assert.equal(reply('/v1/models', true, `limit=${limit}`).kind, 'invalid', limit)
    }
    assert.equal(reply('/v1/models', true, 'limit=1000').data.length, 5)
    assert.equal(reply('/v1/models', false, 'limit=0').data.length, 5)
  })
})
