import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  defaultPriority,
  isPriorityName,
  prioritiesSchema,
  resolvePriority,
} from '../../../src/resilience/priority-classes.ts'

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

  it('reads the first of repeated headers, which arrive comma-joined, rather than promoting them', () => {
    assert.equal(resolvePriority('batch, batch', defaults).className, 'batch')
    assert.equal(resolvePriority('batch,interactive', defaults).className, 'batch')
    assert.equal(resolvePriority(' -1 , 0', defaults).priority, -1)
  })

  it('clamps an integer of any length to the class range', () => {
    const config = prioritiesSchema.parse({ classes: { high: 10, low: -5 }, default: 'low' })
    assert.equal(resolvePriority('99999999999999999', config).priority, 10)
    assert.equal(resolvePriority('-99999999999999999', config).priority, -5)
    assert.equal(resolvePriority('9'.repeat(400), config).className, 'high')
    assert.equal(resolvePriority(`+${'0'.repeat(30)}3`, config).priority, 3)
  })

  it('falls back to the route’s priority, not the global default, when the header is absent or unreadable', () => {
    for (const header of [undefined, '', 'foo', 'batchh']) {
      assert.equal(resolvePriority(header, defaults, 'batch').className, 'batch', header)
      assert.equal(resolvePriority(header, defaults, -7).priority, -1, header)
    }
    assert.equal(resolvePriority('interactive', defaults, 'batch').className, 'interactive')
    assert.equal(resolvePriority('foo', defaults).className, 'interactive')
  })

  it('names the default class’s priority, and tells class names and integers from the rest', () => {
    const config = prioritiesSchema.parse({ classes: { gold: 5, bronze: -2 }, default: 'bronze' })
    assert.equal(defaultPriority(config), -2)
    assert.ok(isPriorityName('gold', config) && isPriorityName('GOLD', config))
    assert.ok(isPriorityName('-3', config))
    assert.ok(!isPriorityName('golden', config) && !isPriorityName('', config))
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
