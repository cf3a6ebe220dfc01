import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  CHAT_TOKENS_PER_MESSAGE,
  chatPromptIdentity,
  chatTokens,
  contentWordsForPromptTokens,
  countChatTokens,
  countTextTokens,
  promptIdentity,
  textPromptIdentity,
  textTokens,
} from '../../../src/sim/sim-tokenizer.ts'

const words = (n: number, prefix = 'w') => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

describe('sim tokenizer', () => {
  it('counts whitespace-separated words as tokens', () => {
    assert.equal(countTextTokens('  hello,\tworld\n\n again  '), 3)
    assert.deepEqual(textTokens('a  b\u00a0c'), ['a', 'b', 'c'])
    assert.equal(countTextTokens(''), 0)
    assert.equal(countTextTokens('x\u3000y\u2009z'), textTokens('x\u3000y\u2009z').length)
  })

  it('adds one role-marker token per chat message', () => {
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'hi there' }, { type: 'image_url' }] },
      { role: 'assistant', content: null },
    ]
    assert.deepEqual(chatTokens(messages), [
      '<|system|>',
      'be',
      'brief',
      '<|user|>',
      'hi',
      'there',
      '<|assistant|>',
    ])
    assert.equal(countChatTokens(messages), 4 + 3 * CHAT_TOKENS_PER_MESSAGE)
  })

  it('lets a builder hit an exact prompt token count', () => {
    for (const target of [1, 2, 17, 1000, 12_345]) {
      const content = words(contentWordsForPromptTokens(target)).join(' ')
      assert.equal(countChatTokens([{ role: 'user', content }]), target)
    }
    assert.throws(() => contentWordsForPromptTokens(1, 2))
  })

  it('gives equal block hashes to equal prefixes and different ones after they diverge', () => {
    const a = promptIdentity([...words(40), 'x', ...words(30, 'a')])
    const b = promptIdentity([...words(40), 'y', ...words(30, 'b')])
    assert.equal(a.promptBlockHashes.length, 4)
    assert.deepEqual(a.promptBlockHashes.slice(0, 2), b.promptBlockHashes.slice(0, 2))
    for (let i = 2; i < 4; i++) assert.notEqual(a.promptBlockHashes[i], b.promptBlockHashes[i])
    assert.notEqual(a.promptHash, b.promptHash)
  })

  it('chains block hashes, so an equal block after a different prefix hashes differently', () => {
    const a = promptIdentity([...words(16, 'p'), ...words(16)])
    const b = promptIdentity([...words(16, 'q'), ...words(16)])
    assert.notEqual(a.promptBlockHashes[1], b.promptBlockHashes[1])
  })

  it('leaves a partial last block out of the block hashes but not out of the prompt hash', () => {
    const a = promptIdentity(words(20))
    const b = promptIdentity([...words(19), 'z'])
    assert.equal(a.promptTokens, 20)
    assert.deepEqual(a.promptBlockHashes, b.promptBlockHashes)
    assert.notEqual(a.promptHash, b.promptHash)
  })
})

describe('sim tokenizer prompt identity', () => {
  it('hashes text and chat the same way as their token sequences', () => {
    const text = ` alpha  beta\tgamma\n${words(70).join('  ')}`
    assert.deepEqual(textPromptIdentity(text), promptIdentity(textTokens(text)))
    const messages = [
      { role: 'system', content: words(20, 's').join(' ') },
      { role: 'user', content: text },
    ]
    assert.deepEqual(chatPromptIdentity(messages), promptIdentity(chatTokens(messages)))
    assert.equal(chatPromptIdentity(messages).promptTokens, countChatTokens(messages))
  })

  it('gives two chats that share a system prompt equal leading block hashes', () => {
    const system = { role: 'system', content: words(100, 'sys').join(' ') }
    const a = chatPromptIdentity([system, { role: 'user', content: words(30, 'q').join(' ') }])
    const b = chatPromptIdentity([system, { role: 'user', content: words(30, 'r').join(' ') }])
    assert.deepEqual(a.promptBlockHashes.slice(0, 6), b.promptBlockHashes.slice(0, 6))
    assert.notEqual(a.promptBlockHashes[6], b.promptBlockHashes[6])
  })
})
