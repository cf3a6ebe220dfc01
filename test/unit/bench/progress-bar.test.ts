import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createProgressBar } from '../../../src/bench/progress-bar.ts'

describe('progress bar', () => {
  it('redraws one line in place on a terminal and ends it', () => {
    let text = ''
    const bar = createProgressBar({ isTTY: true, write: (s: string) => (text += s) }, 'rr')
    bar.update({ total: 10, sent: 10, done: 10, failed: 1 })
    bar.done()
    assert.ok(text.startsWith('\rrr █'))
    assert.ok(text.includes('100% 10/10 done, 10 sent, 1 failed\u001b[K'))
    assert.ok(text.endsWith('\n'))
  })

  it('prints a line per quarter elsewhere', () => {
    const lines: string[] = []
    const bar = createProgressBar({ write: (s: string) => lines.push(s) }, 'rr')
    for (let done = 0; done <= 100; done++) bar.update({ total: 100, sent: 100, done, failed: 0 })
    bar.done()
    assert.equal(lines.length, 5)
    assert.match(lines[4]!, /100% 100\/100/)
  })
})
