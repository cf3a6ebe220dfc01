import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createPrefixPeers, decodeBlocks, encodeBlocks } from '../../../src/llm/prefix-peers.ts'
import { createMemoryState } from '../../../src/state/memory-state.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('prefix block encoding', () => {
  it('round-trips any list of 53-bit block hashes exactly', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), (hashes) => {
        assert.deepEqual(decodeBlocks(encodeBlocks(hashes)), hashes)
      }),
    )
  })

  it('rejects bytes that are not whole doubles or not safe integers', () => {
    assert.equal(decodeBlocks(Buffer.from([1, 2, 3]).toString('base64')), undefined)
    const half = Buffer.alloc(8)
    half.writeDoubleLE(0.5)
    assert.equal(decodeBlocks(half.toString('base64')), undefined)
  })
})

describe('createPrefixPeers', () => {
  const pair = () => {
    const state = createMemoryState({ clock: createManualClock() })
    const errors: unknown[] = []
    const onError = (error: unknown) => errors.push(error)
    return {
      state,
      errors,
      a: createPrefixPeers({ channel: 'prefix:fleet' }, { state, onError }),
      b: createPrefixPeers({ channel: 'prefix:fleet' }, { state, onError }),
    }
  }
  const recorder = () => {
    const heard: string[] = []
    return {
      heard,
      listener: {
        added: (id: string, hashes: readonly number[], capacity: number) =>
          heard.push(`add ${id} ${hashes.join(',')} ${capacity}`),
        removed: (id: string, hash: number) => heard.push(`remove ${id} ${hash}`),
      },
    }
  }

  it("carries one router's inserts and take-backs to the others, never back to itself", async () => {
    const { a, b, state } = pair()
    const atA = recorder()
    const atB = recorder()
    a.listen(atA.listener)
    b.listen(atB.listener)
    a.announceAdded('e0', [1, 2, 2 ** 52 + 7], 4096)
    a.announceRemoved('e0', 2)
    await settle()
    assert.deepEqual(atB.heard, [`add e0 1,2,${2 ** 52 + 7} 4096`, 'remove e0 2'])
    assert.deepEqual(atA.heard, [])
    await state.close()
  })

  it('announces nothing for a prompt too short to have blocks', async () => {
    const { a, b, state } = pair()
    const atB = recorder()
    b.listen(atB.listener)
    a.announceAdded('e0', [], 4096)
    await settle()
    assert.deepEqual(atB.heard, [])
    await state.close()
  })

  it('reports and drops a message on its channel that is not an announcement, or is too long to be one', async () => {
    const { a, state, errors } = pair()
    const atA = recorder()
    a.listen(atA.listener)
    for (const junk of [
      'not framed',
      'peer\nnot json',
      'peer\n{"op":"add","endpoint":"e0","capacityBlocks":1,"blocks":"AQID"}',
      'peer\n{"op":"add","endpoint":"e0","capacityBlocks":0,"blocks":""}',
      'peer\n{"op":"remove","endpoint":"e0","hash":0.5}',
      'peer\n{"op":"drop","endpoint":"e0"}',
      `peer\n{"op":"add","endpoint":"e0","capacityBlocks":1,"blocks":"${'A'.repeat(300_000)}"}`,
    ]) {
      await state.publish('prefix:fleet', junk)
    }
    await settle()
    assert.deepEqual(atA.heard, [])
    assert.equal(errors.length, 7)
    await state.close()
  })

  it('stops hearing after the unsubscribe', async () => {
    const { a, b, state } = pair()
    const atB = recorder()
    const stop = b.listen(atB.listener)
    stop()
    a.announceAdded('e0', [1], 1)
    await settle()
    assert.deepEqual(atB.heard, [])
    await state.close()
  })
})
