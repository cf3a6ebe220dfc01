import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createApproxRadixTree } from '../../../src/llm/approx-radix-tree.ts'
import { createSeededRandom, randomInt } from '../../../src/util/random.ts'

const create = (maxCharsPerTenant = 1_000_000, overrunFactor?: number) =>
  createApproxRadixTree({
    maxCharsPerTenant,
    ...(overrunFactor === undefined ? {} : { overrunFactor }),
  })

describe('approximate radix tree', () => {
  it('matches the longest stored prefix, character by character', () => {
    const tree = create()
    tree.insert('hello world', 'a')
    assert.deepEqual(tree.match('hello world, again'), { matchedChars: 11, tenants: ['a'] })
    assert.deepEqual(tree.match('help'), { matchedChars: 3, tenants: ['a'] })
    assert.deepEqual(tree.match('goodbye'), { matchedChars: 0, tenants: [] })
    assert.deepEqual(tree.match(''), { matchedChars: 0, tenants: [] })
  })

  it('splits a node where two texts diverge, keeping each branch’s tenants', () => {
    const tree = create()
    tree.insert('hello world', 'a')
    tree.insert('hello there', 'b')
    assert.deepEqual(tree.match('hello world'), { matchedChars: 11, tenants: ['a'] })
    assert.deepEqual(tree.match('hello there'), { matchedChars: 11, tenants: ['b'] })
    // The shared head is on both paths, most recently routed first.
    assert.deepEqual(tree.match('hello'), { matchedChars: 5, tenants: ['b', 'a'] })
    assert.equal(tree.nodeCount, 3)
  })

  it('lists the tenants holding a prefix most recently used first', () => {
    const tree = create()
    tree.insert('system prompt', 'a')
    tree.insert('system prompt', 'b')
    tree.insert('system prompt', 'a')
    assert.deepEqual(tree.match('system prompt').tenants, ['a', 'b'])
  })

  it('matches only through nodes a candidate holds', () => {
    const tree = create()
    tree.insert('shared prefix, then a', 'a')
    tree.insert('shared prefix, then b', 'b')
    tree.insert('shared', 'c')
    const match = tree.match('shared prefix, then a', (tenant) => tenant !== 'a')
    assert.deepEqual(match, { matchedChars: 20, tenants: ['b'] })
    assert.deepEqual(
      tree.match('shared prefix', (tenant) => tenant === 'c'),
      {
        matchedChars: 6,
        tenants: ['c'],
      },
    )
    assert.equal(tree.match('shared', () => false).matchedChars, 0)
  })

  it('charges each tenant for the characters on its paths, shared nodes included', () => {
    const tree = create()
    tree.insert('hello world', 'a')
    tree.insert('hello there', 'b')
    tree.insert('hello there', 'a')
    assert.equal(tree.tenantChars('a'), 16) // "hello " + "world" + "there"
    assert.equal(tree.tenantChars('b'), 11)
    assert.equal(tree.tenantChars('nobody'), 0)
  })

  it('forgets the tenants not kept, and the nodes only they were on', () => {
    const tree = create()
    tree.insert('hello world', 'a')
    tree.insert('hello there', 'b')
    tree.insert('goodbye', 'b')
    assert.equal(tree.nodeCount, 4)
    tree.retainOnly(new Set(['a']))
    assert.equal(tree.tenantChars('b'), 0)
    assert.equal(tree.tenantChars('a'), 11)
    assert.deepEqual(tree.match('goodbye'), { matchedChars: 0, tenants: [] })
    assert.deepEqual(tree.match('hello there'), { matchedChars: 6, tenants: ['a'] })
    assert.deepEqual(tree.match('hello world'), { matchedChars: 11, tenants: ['a'] })
    assert.equal(tree.nodeCount, 2)
  })

  it('evicts a tenant’s least recently used leaves until it is within the limit', () => {
    const tree = create(25)
    tree.insert('common-prefix/first', 'a') // 19
    tree.insert('common-prefix/second', 'a') // + 6
    tree.insert('common-prefix/third', 'a') // + 5 = 30
    tree.insert('common-prefix/first', 'a') // refreshes "first"
    tree.evict()
    assert.ok(tree.tenantChars('a') <= 25)
    assert.equal(tree.match('common-prefix/first').matchedChars, 19)
    assert.equal(tree.match('common-prefix/second').matchedChars, 14, 'oldest leaf went first')
    assert.equal(tree.match('common-prefix/third').matchedChars, 19)
  })

  it('drops nodes no tenant is left on, and leaves other tenants’ nodes alone', () => {
    const tree = create(10)
    tree.insert('aaaaaaaaaaaaaaaaaaaa', 'a')
    tree.insert('bbbb', 'b')
    assert.equal(tree.nodeCount, 2)
    tree.evict()
    assert.equal(tree.tenantChars('a'), 0)
    assert.equal(tree.nodeCount, 1)
    assert.deepEqual(tree.match('bbbb'), { matchedChars: 4, tenants: ['b'] })
  })

  it('evicts at once on insert past overrunFactor × the limit, between periodic passes', () => {
    const tree = create(100, 2)
    for (let i = 0; i < 10; i++) tree.insert(`${i}`.repeat(20) + 'x'.repeat(10), 't')
    // 300 characters inserted: the insert that crossed 200 trimmed the tenant back to 100.
    assert.ok(tree.tenantChars('t') <= 200, `${tree.tenantChars('t')}`)
    assert.equal(tree.match('9'.repeat(20)).matchedChars, 20, 'the newest survives')
    assert.equal(tree.match('0'.repeat(20)).matchedChars, 0, 'the oldest is gone')
  })

  it('stays within twice the limit per tenant under random traffic (property)', () => {
    const random = createSeededRandom(11)
    const tree = create(2_000)
    const words = ['sys', 'user', 'tool', 'assistant', 'doc', 'q']
    for (let i = 0; i < 3_000; i++) {
      let text = ''
      const parts = 1 + randomInt(random, 12)
      for (let p = 0; p < parts; p++)
        text += `${words[randomInt(random, words.length)]}${randomInt(random, 50)} `
      const tenant = `t${randomInt(random, 3)}`
      tree.insert(text, tenant)
      assert.ok(tree.tenantChars(tenant) <= 4_000 + text.length)
      if (i % 500 === 0) {
        tree.evict()
        for (const t of ['t0', 't1', 't2']) assert.ok(tree.tenantChars(t) <= 2_000)
      }
    }
  })
})
