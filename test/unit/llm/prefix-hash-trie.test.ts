import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createPrefixHashTrie } from '../../../src/llm/prefix-hash-trie.ts'

const chars = (seed: string, length: number): string => {
  let out = ''
  for (let i = 0; out.length < length; i++) out += `${seed}${i},`
  return out.slice(0, length)
}

const all = new Set(['e0', 'e1', 'e2'])

describe('prefix hash trie', () => {
  it('matches whole chunks and narrows to the endpoints holding the longest match', () => {
    const trie = createPrefixHashTrie({ chunkChars: 128, maxNodes: 1_000 })
    const shared = chars('s', 256)
    trie.insert(`${shared}${chars('a', 100)}`, 'e0')
    trie.insert(`${shared.slice(0, 128)}${chars('b', 200)}`, 'e1')
    const match = trie.longestPrefixMatch(`${shared}${chars('c', 100)}`, all)
    assert.equal(match.matchedChars, 256)
    assert.deepEqual([...match.endpoints], ['e0'])
  })

  it('returns every available endpoint when nothing matches', () => {
    const trie = createPrefixHashTrie({ chunkChars: 128, maxNodes: 1_000 })
    trie.insert(chars('a', 300), 'e0')
    const match = trie.longestPrefixMatch(chars('b', 300), all)
    assert.equal(match.matchedChars, 0)
    assert.deepEqual(match.endpoints, all)
  })

  it('stops where no available endpoint holds the next chunk', () => {
    const trie = createPrefixHashTrie({ chunkChars: 128, maxNodes: 1_000 })
    const prompt = chars('p', 512)
    trie.insert(prompt.slice(0, 128), 'e1')
    trie.insert(prompt, 'e0')
    const match = trie.longestPrefixMatch(prompt, new Set(['e1', 'e2']))
    assert.equal(match.matchedChars, 128)
    assert.deepEqual([...match.endpoints], ['e1'])
  })

  it('holds at most maxNodes nodes, evicting the least recently inserted leaves', () => {
    const trie = createPrefixHashTrie({ chunkChars: 10, maxNodes: 6 })
    const shared = chars('s', 20)
    trie.insert(`${shared}${chars('a', 20)}`, 'e0') // 4 nodes
    trie.insert(`${shared}${chars('b', 20)}`, 'e1') // + 2, shared refreshed
    trie.insert(chars('c', 20), 'e2') // + 2: the two oldest leaves go
    assert.equal(trie.nodeCount, 6)
    assert.equal(trie.longestPrefixMatch(`${shared}${chars('a', 20)}`, all).matchedChars, 20)
    assert.equal(trie.longestPrefixMatch(`${shared}${chars('b', 20)}`, all).matchedChars, 40)
    assert.equal(trie.longestPrefixMatch(chars('c', 20), all).matchedChars, 20)
  })

  it('never evicts a node whose children survive', () => {
    const trie = createPrefixHashTrie({ chunkChars: 4, maxNodes: 20 })
    for (let i = 0; i < 500; i++) trie.insert(`root${chars(`${i % 37}`, 4 * (1 + (i % 5)))}`, 'e0')
    assert.ok(trie.nodeCount <= 20)
    // Any surviving deep path is reachable from the root.
    const match = trie.longestPrefixMatch('root', new Set(['e0']))
    assert.equal(match.matchedChars, 4)
  })
})
