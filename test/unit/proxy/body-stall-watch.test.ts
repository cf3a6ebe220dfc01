import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createBodyStallWatch } from '../../../src/proxy/body-stall-watch.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

describe('body stall watch', () => {
  test('calls a body stalled once idleMs pass with no chunk, counting from the last one', () => {
    const clock = createManualClock()
    const reasons: string[] = []
    const watch = createBodyStallWatch({ idleMs: 100 }, (reason) => reasons.push(reason), { clock })
    clock.advance(80)
    watch.noteChunk()
    clock.advance(80)
    assert.deepEqual(reasons, [])
    clock.advance(20)
    assert.deepEqual(reasons, ['the request body stalled for 100 ms'])
  })

  test('calls a steadily trickling body too slow at its deadline', () => {
    const clock = createManualClock()
    const reasons: string[] = []
    const watch = createBodyStallWatch({ idleMs: 100, deadlineMs: 250 }, (r) => reasons.push(r), {
      clock,
    })
    for (let i = 0; i < 5; i++) {
      clock.advance(50)
      watch.noteChunk()
    }
    assert.deepEqual(reasons, ['the request body took over 250 ms'])
  })

  test('does not count silence while bytes wait for their reader, and stops when told', () => {
    const clock = createManualClock()
    const reasons: string[] = []
    let held = true
    createBodyStallWatch({ idleMs: 100, isHeld: () => held }, (r) => reasons.push(r), { clock })
    clock.advance(500)
    assert.equal(reasons.length, 0, 'silence while bytes are held is not the client’s')
    held = false
    clock.advance(100)
    assert.equal(reasons.length, 1)
    const stopped = createBodyStallWatch({ idleMs: 100 }, (r) => reasons.push(r), { clock })
    stopped.stop()
    clock.advance(1000)
    assert.equal(reasons.length, 1)
  })
})
