import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { memoizeBySnapshot } from '../../../../src/balancer/pickers/snapshot-memo.ts'
import { makeEndpoints, snapshot } from '../../../conformance/picker-fixtures.ts'

describe('snapshot memo', () => {
  it('builds once per snapshot identity, even when snapshots alternate', () => {
    let builds = 0
    const derive = memoizeBySnapshot((eligible) => ({ size: eligible.length, build: ++builds }))
    const a = makeEndpoints([1, 2])
    const b = snapshot(a)
    assert.equal(derive(a).build, 1)
    assert.equal(derive(a).build, 1)
    assert.equal(derive(b).build, 2)
    assert.equal(derive(a).build, 1)
    assert.equal(derive(b).build, 2)
    assert.equal(builds, 2)
  })
})
