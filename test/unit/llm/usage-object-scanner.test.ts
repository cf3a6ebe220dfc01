import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createUsageObjectScanner } from '../../../src/llm/usage-object-scanner.ts'

function scan(pieces: readonly string[], options?: { maxObjectChars?: number }): unknown[] {
  const found: unknown[] = []
  const scanner = createUsageObjectScanner((usage) => found.push(usage), options)
  for (const piece of pieces) scanner.write(piece)
  return found
}

describe('usage object scanner', () => {
  const body = JSON.stringify({
    choices: [{ message: { content: 'a } brace, a "quoted" word and "usage": {"fake":1}' } }],
    usage: { prompt_tokens: 7, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } },
  })
  const usage = {
    prompt_tokens: 7,
    completion_tokens: 3,
    prompt_tokens_details: { cached_tokens: 0 },
  }

  test('finds the usage object, not text inside strings that looks like one', () => {
    assert.deepEqual(scan([body]), [usage])
  })

  test('finds it however the text is split', () => {
    for (let cut = 1; cut < body.length; cut++) {
      assert.deepEqual(scan([body.slice(0, cut), body.slice(cut)]), [usage], `cut at ${cut}`)
    }
    assert.deepEqual(scan([...body]), [usage])
  })

  test('allows whitespace around the colon and skips a null usage', () => {
    assert.deepEqual(scan(['{"usage": null, "x": 1}', '{"usage" :\n {"input_tokens": 2}}']), [
      { input_tokens: 2 },
    ])
  })

  test('gives up on an object longer than a usage object can be', () => {
    const long = `{"usage":{"note":"${'x'.repeat(100)}"}} {"usage":{"input_tokens":1}}`
    assert.deepEqual(scan([long], { maxObjectChars: 64 }), [{ input_tokens: 1 }])
  })

  test('reset drops an object cut off mid-way', () => {
    const found: unknown[] = []
    const scanner = createUsageObjectScanner((u) => found.push(u))
    scanner.write('{"usage":{"input_tokens":')
    scanner.reset()
    scanner.write('5}} {"usage":{"output_tokens":6}}')
    assert.deepEqual(found, [{ output_tokens: 6 }])
  })
})
