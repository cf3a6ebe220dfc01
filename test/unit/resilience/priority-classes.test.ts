import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { prioritiesSchema, resolvePriority } from '../../../src/resilience/priority-classes.ts'

const defaults = prioritiesSchema.parse({})

describe('priority classes', () => {
  it('defaults to the issue’s classes: interactive 0, batch -1, negative sheddable', () => {
    assert.deepEqual(defaults, {
      header: 'x-priority',
      classes: { interactive: 0, batch: -1 },
      default: 'interactive',
      sheddable: 'negative',
    })
  })

  it('rejects a default that names no class, and unknown keys', () => {
    assert.equal(prioritiesSchema.safeParse({ default: 'premium' }).success, false)
    assert.equal(prioritiesSchema.safeParse({ headers: 'x-priority' }).success, false)
    assert.equal(prioritiesSchema.safeParse({ classes: { fast: 1.5 } }).success, false)
    assert.equal(prioritiesSchema.safeParse({ classes: {} }).success, false)
  })

  it('lower-cases the header name, as Node presents incoming headers', () => {
    assert.equal(prioritiesSchema.parse({ header: 'X-Priority-Class' }).header, 'x-priority-class')
  })

  it('uses the default class when the header is absent or empty', () => {
    for (const value of [undefined, '', '   ']) {
      assert.deepEqual(resolvePriority(value, defaults), {
        priority: 0,
        sheddable: false,
        className: 'interactive',
      })
    }
  })

  it('accepts a class name, case-insensitively', () => {
    assert.deepEqual(resolvePriority('batch', defaults), {
      priority: -1,
      sheddable: true,
      className: 'batch',
    })
    assert.equal(resolvePriority(' Batch ', defaults).className, 'batch')
  })

  it('sends an unknown name to the default class rather than failing or promoting it', () => {
    for (const value of ['premium', 'constructor', '__proto__', '1e9', 'NaN']) {
      assert.equal(resolvePriority(value, defaults).className, 'interactive', value)
    }
  })

  it('accepts an integer, clamped to the range the classes span', () => {
    const config = prioritiesSchema.parse({
      classes: { critical: 10, interactive: 0, batch: -5 },
    })
    assert.deepEqual(resolvePriority('3', config), {
      priority: 3,
      sheddable: false,
      className: '3',
    })
    assert.deepEqual(resolvePriority('-2', config), {
      priority: -2,
      sheddable: true,
      className: '-2',
    })
    assert.equal(resolvePriority('999999', config).className, 'critical')
    assert.equal(resolvePriority('-999999', config).priority, -5)
    assert.equal(resolvePriority('-0', config).priority, 0)
    assert.ok(Object.is(resolvePriority('-0', config).priority, 0), 'no negative zero')
  })

  it('sheds nothing when sheddable is never', () => {
    const config = prioritiesSchema.parse({ sheddable: 'never' })
    assert.equal(resolvePriority('batch', config).sheddable, false)
  })

  it('always lands inside the configured range, whatever the header says', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const { priority, sheddable } = resolvePriority(value, defaults)
        assert.ok(Number.isInteger(priority) && priority >= -1 && priority <= 0)
        assert.equal(sheddable, priority < 0)
      }),
    )
  })
})
