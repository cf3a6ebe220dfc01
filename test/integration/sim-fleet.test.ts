import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSimFleet, type SimFleet } from '../../src/sim/fleet.ts'

async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`))
  assert.ok(line, `${name} missing`)
  return Number(line.split(' ').at(-1))
}

describe('sim fleet', () => {
  it('starts one engine per replica, each on its own ephemeral port with port 0', async (t) => {
    const fleet = await createSimFleet({
      replicas: 3,
      profile: 'h100-llama3-8b:2,a100-llama3-8b:1',
      speedup: 100,
    })
    t.after(() => fleet.close())
    assert.equal(new Set(fleet.urls).size, 3)
    for (const url of fleet.urls) {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal((await fetch(`${url}/health`)).status, 200)
    }
    const blocks = await Promise.all(
      fleet.urls.map(async (url) => {
        const text = await (await fetch(`${url}/metrics`)).text()
        return /num_gpu_blocks="(\d+)"/.exec(text)?.[1]
      }),
    )
    assert.deepEqual(blocks, ['26900', '26900', '27500'])
  })

  it('starts engines on consecutive ports from a fixed port', async (t) => {
    let fleet: SimFleet | undefined
    for (let attempt = 0; attempt < 5 && !fleet; attempt++) {
      const port = 20_000 + Math.floor(Math.random() * 40_000)
      fleet = await createSimFleet({ replicas: 2, profile: 'h100-llama3-8b', port }).catch(
        () => undefined,
      )
      if (fleet)
        assert.deepEqual(fleet.urls, [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`])
    }
    assert.ok(fleet, 'no two consecutive free ports found in 5 tries')
    t.after(() => fleet.close())
  })

  it('keeps each replica its own prefix cache', async (t) => {
    const fleet = await createSimFleet({ replicas: 2, profile: 'h100-llama3-8b', speedup: 100 })
    t.after(() => fleet.close())
    const content = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ')
    const send = (url: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 1 }),
      }).then((r) => r.json())
    await send(fleet.urls[0]!)
    await send(fleet.urls[0]!)
    await send(fleet.urls[1]!)
    assert.equal(await metricValue(fleet.urls[0]!, 'vllm:prefix_cache_hits_total'), 192)
    assert.equal(await metricValue(fleet.urls[1]!, 'vllm:prefix_cache_hits_total'), 0)
  })

  it('refuses a profile list that disagrees with the replica count', async () => {
    await assert.rejects(
      createSimFleet({ replicas: 3, profile: 'h100-llama3-8b:2,a100-llama3-8b:2' }),
      /describes 4 replicas/,
    )
  })
})
