import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { rewriteModelField } from '../../../src/proxy/rewrite-model-field.ts'

const rewrite = (json: string, model = 'served/M') =>
  rewriteModelField(Buffer.from(json), model)?.toString('utf8')

describe('rewriting the model field in place', () => {
  test('replaces only the model value, keeping big integers, overflowing numbers and spacing', () => {
    const body = '{ "seed": 12345678901234567890, "model" :\t"m", "t": 1e400 ,"x":[1,{"a":"}"}]}'
    assert.equal(
      rewrite(body),
      '{ "seed": 12345678901234567890, "model" :\t"served/M", "t": 1e400 ,"x":[1,{"a":"}"}]}',
    )
  })

  test('ignores model keys nested in messages and inside strings', () => {
    const body =
      '{"messages":[{"role":"user","content":"\\"model\\": \\"x\\"","model":"inner"}],"meta":{"model":"n"},"model":"m"}'
    assert.equal(
      rewrite(body),
      '{"messages":[{"role":"user","content":"\\"model\\": \\"x\\"","model":"inner"}],"meta":{"model":"n"},"model":"served/M"}',
    )
  })

  test('handles escaped keys and values, multi-byte text and a model of special characters', () => {
    const body = '{"prompt":"héllo ✓ \\\\","mod\\u0065l":"a\\"b","n":null}'
    const out = rewrite(body, 'q"\\ü')
    assert.equal(out, `{"prompt":"héllo ✓ \\\\","mod\\u0065l":${JSON.stringify('q"\\ü')},"n":null}`)
    assert.equal(JSON.parse(out!).model, 'q"\\ü')
  })

  test('replaces every top-level duplicate, so any parser reads the served name', () => {
    assert.equal(rewrite('{"model":"a","model":"b"}'), '{"model":"served/M","model":"served/M"}')
  })

  test('returns undefined for a body with no top-level model or that is not an object', () => {
    assert.equal(rewrite('{"x":{"model":"m"}}'), undefined)
    assert.equal(rewrite('[{"model":"m"}]'), undefined)
    assert.equal(rewrite('{}'), undefined)
  })
})
