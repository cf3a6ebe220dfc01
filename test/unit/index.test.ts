import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

describe('package entry (src/index.ts)', () => {
  it('starts nothing on import and exports the embedding API', async () => {
    const before = process.getActiveResourcesInfo().length
    const aya = await import('../../src/index.ts')
    assert.equal(process.getActiveResourcesInfo().length, before)
    for (const name of [
      'createAya',
      'parseConfigText',
      'loadConfigFile',
      'findPicker',
      'createAdmissionQueue',
      'createSimFleet',
      'createEngine',
      'createMemoryState',
      'runDesPolicy',
    ] as const) {
      assert.equal(typeof aya[name], 'function', name)
    }
    assert.ok(aya.pickerNames().includes('aya'))
    assert.equal(aya.findPicker('aya')?.name, 'aya')
  })

  it('parses a config and reports a bad one by path through the same entry', async () => {
    const { parseConfigText, ConfigError } = await import('../../src/index.ts')
    const config = parseConfigText(
      [
        'listeners: [{ name: public, port: 0 }]',
        'routes: [{ name: all, match: { pathPrefix: / }, upstream: web }]',
        'upstreams: { web: { endpoints: [{ url: "http://127.0.0.1:9" }] } }',
      ].join('\n'),
      {},
    )
    assert.equal(config.listeners[0]?.name, 'public')
    assert.throws(
      () => parseConfigText('listeners: [{ name: public, port: -1 }]\n', {}),
      (error: unknown) =>
        error instanceof ConfigError && error.message.includes('listeners[0].port'),
    )
  })

  it('starts and stops an Aya from a config, as the README shows', async () => {
    const { createAya, parseConfigText } = await import('../../src/index.ts')
    const aya = createAya(
      parseConfigText(
        [
          'listeners: [{ name: public, address: 127.0.0.1, port: 0 }]',
          'admin: { address: 127.0.0.1, port: 0 }',
          'routes: [{ name: all, match: { pathPrefix: / }, upstream: web }]',
          'upstreams: { web: { endpoints: [{ url: "http://127.0.0.1:9" }] } }',
        ].join('\n'),
        {},
      ),
    )
    const addresses = await aya.start()
    const res = await fetch(`http://127.0.0.1:${addresses.admin.port}/healthz`)
    assert.equal(res.status, 200)
    await aya.close()
  })
})
