import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../../src/config/load.ts'
import { createProxyRuntime } from '../../../src/proxy/proxy-runtime.ts'
import { createMemoryState } from '../../../src/state/memory-state.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { createSeededRandom } from '../../../src/util/random.ts'

const configWith = (admission: Record<string, unknown> | undefined) =>
  parseConfigObject(
    {
      listeners: [{ name: 'public', port: 0 }],
      routes: [{ match: { pathPrefix: '/' }, upstream: 'fleet' }],
      upstreams: {
        fleet: {
          policy: 'aya',
          endpoints: [{ url: 'http://127.0.0.1:1' }],
          ...(admission ? { admission } : {}),
        },
      },
    },
    {},
  )

describe('proxy runtime reload', () => {
  test('keeps the upstream’s admission queue while its settings are unchanged, and builds a new one when they change', async (t) => {
    const clock = createManualClock()
    const state = createMemoryState({ clock })
    t.after(() => state.close())
    const deps = { clock, random: createSeededRandom(1), state, stickySecret: 's' }
    const first = createProxyRuntime(configWith({ ttftSloMs: 2000 }), deps)
    const same = createProxyRuntime(configWith({ ttftSloMs: 2000 }), deps, first)
    const admission = first.upstreams.get('fleet')!.admission
    assert.ok(admission)
    assert.equal(same.upstreams.get('fleet')!.admission, admission)
    assert.equal(same.upstreams.get('fleet')!.group, first.upstreams.get('fleet')!.group)
    const changed = createProxyRuntime(configWith({ ttftSloMs: 500 }), deps, same)
    assert.ok(changed.upstreams.get('fleet')!.admission)
    assert.notEqual(changed.upstreams.get('fleet')!.admission, admission)
    const removed = createProxyRuntime(configWith(undefined), deps, changed)
    assert.equal(removed.upstreams.get('fleet')!.admission, undefined)
  })

  test('an upstream a reload removes lets the prompts its pacer holds go at once', async (t) => {
    const clock = createManualClock()
    const state = createMemoryState({ clock })
    t.after(() => state.close())
    const deps = { clock, random: createSeededRandom(1), state, stickySecret: 's' }
    const first = createProxyRuntime(configWith(undefined), deps)
    const pacer = first.upstreams.get('fleet')!.group.pacer()!
    const released: string[] = []
    for (const [name, tokens] of [
      ['sent', 30_000],
      ['held', 1000],
    ] as const) {
      pacer.enter('127.0.0.1:1', tokens).whenReleased(() => released.push(name))
    }
    assert.deepEqual(released, ['sent'])
    const renamed = parseConfigObject(
      {
        listeners: [{ name: 'public', port: 0 }],
        routes: [{ match: { pathPrefix: '/' }, upstream: 'fleet2' }],
        upstreams: { fleet2: { policy: 'aya', endpoints: [{ url: 'http://127.0.0.1:2' }] } },
      },
      {},
    )
    createProxyRuntime(renamed, deps, first)
    assert.deepEqual(released, ['sent', 'held'])
  })

  test('a reload that removes the admission block, or the upstream, lets the requests waiting in its queue go at once', async (t) => {
    const clock = createManualClock()
    const state = createMemoryState({ clock })
    t.after(() => state.close())
    const deps = { clock, random: createSeededRandom(1), state, stickySecret: 's' }
    const renamed = parseConfigObject(
      {
        listeners: [{ name: 'public', port: 0 }],
        routes: [{ match: { pathPrefix: '/' }, upstream: 'fleet2' }],
        upstreams: { fleet2: { policy: 'aya', endpoints: [{ url: 'http://127.0.0.1:2' }] } },
      },
      {},
    )
    for (const next of [configWith(undefined), renamed]) {
      const first = createProxyRuntime(configWith({ maxWaitMs: 60_000 }), deps)
      const admission = first.upstreams.get('fleet')!.admission!
      // Its one endpoint is excluded: the policy cannot place it, so it waits.
      const waiting = admission.acquire({
        ctx: { attempt: 0, exclude: new Set(['127.0.0.1:1']) },
        priority: 0,
        sheddable: false,
        tenant: '',
        sizeBytes: 10,
        predictedCost: 100,
        signal: new AbortController().signal,
      })
      assert.ok(waiting instanceof Promise)
      assert.equal(admission.waiting, 1)
      createProxyRuntime(next, deps, first)
      assert.equal(admission.waiting, 0)
      assert.deepEqual(await waiting, { admitted: true, waitedMs: 0 })
      admission.close()
    }
  })
})
