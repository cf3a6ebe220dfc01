import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { configIssuesOf } from '../../helpers/config-issues.ts'

const withAdmission = (admission: object, route: object = {}) => ({
  listeners: [{ name: 'public', port: 0 }],
  routes: [{ match: { pathPrefix: '/' }, upstream: 'api', ...route }],
  upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:9001' }], admission } },
})

describe('admission and priority config', () => {
  test('defaults: no early shedding, fair-share eviction on', () => {
    const admission = parseConfigObject(withAdmission({}), {}).upstreams.api!.admission!
    assert.equal(admission.shedEarly, false)
    assert.equal(admission.fairShareEviction, true)
  })

  test('takes the anti-starvation bounds of shortest-predicted-first, and refuses an aging share outside (0, 1]', () => {
    const defaults = parseConfigObject(withAdmission({}), {}).upstreams.api!.admission!
    assert.equal(defaults.maxBypassMs, 5_000)
    assert.equal(defaults.agingFraction, 0.5)
    const set = parseConfigObject(withAdmission({ maxBypassMs: 0, agingFraction: 1 }), {})
    assert.equal(set.upstreams.api!.admission!.maxBypassMs, 0)
    assert.equal(set.upstreams.api!.admission!.agingFraction, 1)
    const [issue] = configIssuesOf(withAdmission({ agingFraction: 0 }))
    assert.match(issue!, /^upstreams\.api\.admission\.agingFraction: .*0$/)
    const [bypass] = configIssuesOf(withAdmission({ maxBypassMs: -1 }))
    assert.match(bypass!, /^upstreams\.api\.admission\.maxBypassMs: .*-1$/)
  })

  test('refuses a wait or recheck longer than a timer can run, naming the path and value', () => {
    assert.deepEqual(configIssuesOf(withAdmission({ maxWaitMs: 3_000_000_000 })), [
      'upstreams.api.admission.maxWaitMs: expected at most 2147483647 milliseconds (about 24.8 days), got 3000000000',
    ])
    const [issue] = configIssuesOf(withAdmission({ recheckMs: 2 ** 31 }))
    assert.match(issue!, /^upstreams\.api\.admission\.recheckMs: .*2147483648$/)
    parseConfigObject(withAdmission({ maxWaitMs: 2 ** 31 - 1 }), {})
  })

  test('refuses a route priority that names no class, naming the path and value', () => {
    assert.deepEqual(configIssuesOf(withAdmission({}, { priority: 'batchh' })), [
      'routes[0].priority: unknown priority class "batchh" (expected an integer or one of interactive, batch)',
    ])
  })

  test('says what a route priority must be when it is neither a class name nor an integer', () => {
    for (const priority of [1.5, '', true]) {
      assert.deepEqual(configIssuesOf(withAdmission({}, { priority })), [
        `routes[0].priority: expected a priority class name or an integer, got ${JSON.stringify(priority)}`,
      ])
    }
  })

  test('names the classes a priorities.default must be one of, and the implied one when it is left out', () => {
    const withPriorities = (priorities: object) => ({ ...withAdmission({}), priorities })
    assert.deepEqual(
      configIssuesOf(withPriorities({ classes: { high: 1, low: 0 }, default: 'lo' })),
      ['priorities.default: expected one of priorities.classes: high, low, got "lo"'],
    )
    assert.deepEqual(configIssuesOf(withPriorities({ classes: { high: 1, low: 0 } })), [
      'priorities.default: expected one of priorities.classes: high, low (the default "interactive" is not one), but it is missing',
    ])
    // No classes at all is the one issue: the default is not checked against none.
    assert.deepEqual(configIssuesOf(withPriorities({ classes: {} })), [
      'priorities.classes: expected at least one class, got {}',
    ])
    assert.deepEqual(configIssuesOf(withPriorities({ sheddable: 'maybe' })), [
      'priorities.sheddable: expected negative or never, got "maybe"',
    ])
  })

  test('accepts a route priority that is a class name (in any case) or an integer', () => {
    for (const priority of ['batch', 'BATCH', -3, 1e15, '2']) {
      const config = parseConfigObject(withAdmission({}, { priority }), {})
      assert.equal(config.routes[0]!.priority, priority)
    }
  })

  test('takes an SLO and a longest wait per priority class, and refuses a class that does not exist', () => {
    const classes = { batch: { ttftSloMs: 60_000, maxWaitMs: 600_000 } }
    const admission = parseConfigObject(withAdmission({ classes }), {}).upstreams.api!.admission!
    assert.deepEqual(admission.classes, classes)
    assert.deepEqual(configIssuesOf(withAdmission({ classes: { bacth: { maxWaitMs: 1000 } } })), [
      'upstreams.api.admission.classes.bacth: unknown priority class "bacth" (expected one of interactive, batch)',
    ])
    const [issue] = configIssuesOf(withAdmission({ classes: { batch: { ttftSloMs: 0 } } }))
    assert.match(issue!, /^upstreams\.api\.admission\.classes\.batch\.ttftSloMs: /)
  })
})
