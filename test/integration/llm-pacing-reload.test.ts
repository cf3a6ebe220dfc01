import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseConfigObject } from '../../src/config/load.ts'
import { createSimFleet } from '../../src/sim/fleet.ts'
import { startAya } from '../helpers/aya.ts'
import { postLoremChat } from '../helpers/lorem-chat.ts'

const chat = (url: string, words: number) => postLoremChat(url, words)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('prefill pacing across a reload', () => {
  test('a prompt held for an endpoint that a reload removes is placed again, and one whose endpoint stays is sent there', async (t) => {
    // Two real simulated engines; A100 prefill (~12k tokens/s) keeps a 6k-token prompt prefilling
    // for about half a second, so a second one is held behind it.
    const fleet = await createSimFleet({ replicas: 2, profile: 'a100-llama3-8b', speedup: 1 })
    t.after(() => fleet.close())
    const raw = (url: string, weight = 1) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: {
        llama: { deployments: [{ upstream: 'fleet', model: 'meta-llama/Llama-3.1-8B-Instruct' }] },
      },
      upstreams: { fleet: { policy: 'aya', endpoints: [{ url, weight }] } },
    })
    const aya = await startAya(raw(fleet.urls[0]!))
    t.after(() => aya.close())

    const first = chat(aya.url, 6000)
    await sleep(60)
    const held = chat(aya.url, 6000)
    await sleep(60)
    // The only endpoint is replaced while the second prompt waits in its lane.
    aya.aya.reload(parseConfigObject(raw(fleet.urls[1]!), {}))
    const [a, b] = await Promise.all([first, held])
    assert.equal(a.statusCode, 200)
    await a.body.dump()
    assert.equal(b.statusCode, 200, `held request: ${await b.body.text()}`)
    await b.body.dump()

    // A reload that keeps the endpoint (only its weight changes) sends the held prompt there.
    const third = chat(aya.url, 6000)
    await sleep(60)
    const heldAgain = chat(aya.url, 6000)
    await sleep(60)
    aya.aya.reload(parseConfigObject(raw(fleet.urls[1]!, 2), {}))
    const [c, d] = await Promise.all([third, heldAgain])
    assert.equal(c.statusCode, 200)
    await c.body.dump()
    assert.equal(d.statusCode, 200, `held request: ${await d.body.text()}`)
    await d.body.dump()
  })
})
