import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createApproxPrefixProducer } from '../../../src/llm/approx-prefix-producer.ts'
import type { KvLayout } from '../../../src/llm/engine-snapshot.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { makeEndpoints } from '../../conformance/picker-fixtures.ts'
import { llmRequest, text } from '../balancer/pickers/llm-fixtures.ts'

function producerWith(layout: KvLayout | undefined, autoTune = true) {
  return createApproxPrefixProducer(
    { blockSizeChars: 64, maxPrefixBlocks: 256, lruCapacityPerServer: 1000, autoTune },
    {
      clock: createManualClock(),
      engineMetrics: { get: () => undefined, kvLayout: () => layout },
    },
  )
}

/** How many of `prompts` (10 blocks each, recorded in order) the endpoint still holds. */
function heldAfterRecording(layout: KvLayout | undefined, prompts: number): number {
  const producer = producerWith(layout)
  const [endpoint] = makeEndpoints([1])
  const requests = Array.from({ length: prompts }, (_, i) => llmRequest(text(`p${i}`, 640)))
  for (const request of requests) {
    producer.record(endpoint!, producer.match(request, [endpoint!]).hashes)
  }
  return requests.filter((r) => producer.match(r, [endpoint!]).scoreOf(endpoint!) === 1).length
}

describe('approx prefix producer', () => {
  it('sizes the LRU in 64-character (16-token) blocks from vLLM’s num_gpu_blocks', () => {
    // 20 blocks of 16 tokens: two 10-block prompts fit, the first of three is evicted.
    assert.equal(heldAfterRecording({ blockSize: 16, numGpuBlocks: 20 }, 3), 2)
  })

  it('counts SGLang’s 1-token pages in its own 16-token blocks', () => {
    // 320 one-token pages are the same 20 blocks: not 320 blocks, which would keep all three.
    assert.equal(heldAfterRecording({ blockSize: 1, numGpuBlocks: 320 }, 3), 2)
  })

  it('keeps lruCapacityPerServer without a layout', () => {
    assert.equal(heldAfterRecording(undefined, 3), 3)
  })
})
