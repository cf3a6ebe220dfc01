import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createDesPubSub } from '../../../src/bench/des-pubsub.ts'
import { Endpoint } from '../../../src/upstream/endpoint.ts'
import { createLoadPeers } from '../../../src/upstream/load-peers.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'

/** Two router replicas over endpoints e0 and e1, linked by pub/sub that delivers 1 ms later. */
function twoReplicas() {
  const clock = createManualClock()
  const state = createDesPubSub({ delayMs: 1 }, { clock })
  const errors: unknown[] = []
  let published = 0
  const publish = state.publish.bind(state)
  state.publish = (channel, message) => {
    published++
    return publish(channel, message)
  }
  const replica = () => {
    const peers = createLoadPeers(
      { channel: 'load:fleet' },
      { state, clock, onError: (error) => errors.push(error) },
    )
    const endpoints = ['e0', 'e1'].map(
      (id) =>
        new Endpoint(
          { id, url: `http://${id}`, origin: `http://${id}`, weight: 1 },
          { clock, onLoadChange: peers.changed },
        ),
    )
    const heard: string[] = []
    peers.listen({
      find: (id) => endpoints.find((endpoint) => endpoint.id === id),
      heard: (id) => heard.push(id),
      // As a pacer holding all but 300 tokens of what it placed would say.
      sentPrefillTokens: (endpoint) => Math.min(300, endpoint.own.prefillTokens),
    })
    return { peers, heard, e0: endpoints[0]!, e1: endpoints[1]! }
  }
  return { clock, state, errors, published: () => published, a: replica(), b: replica() }
}

const counts = (endpoint: Endpoint) => ({
  inflight: endpoint.inflight,
  prefillTokens: endpoint.pendingPrefillTokens,
  prefillRequests: endpoint.pendingPrefillRequests,
  kvTokens: endpoint.kvTokens,
})
const ok = { ok: true, status: 200, latencyMs: 1 }

describe('createLoadPeers', () => {
  it('adds another replica’s in-flight requests, prefill and KV to the same endpoint, until its work ends', () => {
    const { clock, a, b } = twoReplicas()
    const lease = a.e0.begin({ prefillTokens: 5000, kvTokens: 6000 })
    clock.advance(10)
    assert.deepEqual(counts(b.e0), {
      inflight: 1,
      prefillTokens: 5000,
      prefillRequests: 1,
      kvTokens: 6000,
    })
    assert.equal(b.e0.own.inflight, 0, 'b’s own part is untouched')
    assert.deepEqual(counts(b.e1), {
      inflight: 0,
      prefillTokens: 0,
      prefillRequests: 0,
      kvTokens: 0,
    })
    const firstTokenAtMs = clock.now()
    lease.firstToken()
    clock.advance(10)
    assert.equal(b.e0.pendingPrefillTokens, 0)
    assert.equal(b.e0.pendingPrefillRequests, 0)
    assert.equal(b.e0.prefillsDoneSince(firstTokenAtMs), 1, 'its prefill ended, as b can tell')
    assert.equal(b.e0.inflight, 1, 'still decoding')
    lease.end(ok)
    clock.advance(10)
    assert.deepEqual(counts(b.e0), {
      inflight: 0,
      prefillTokens: 0,
      prefillRequests: 0,
      kvTokens: 0,
    })
  })

  it('counts the other replicas as placing what it places, until their announcements can have arrived', () => {
    const { clock, a, b } = twoReplicas()
    // Before a has heard of any other replica, its placements are its own alone.
    const early = a.e1.begin({ prefillTokens: 800 })
    assert.equal(a.e1.pendingPrefillTokens, 800)
    clock.advance(10)
    early.end(ok)
    clock.advance(10)
    // b has heard a: a burst b places now, a is placing too, unseen for a few ms.
    const lease = b.e0.begin({ prefillTokens: 1000, kvTokens: 1200 })
    assert.deepEqual(counts(b.e0), {
      inflight: 2,
      prefillTokens: 2000,
      prefillRequests: 2,
      kvTokens: 2400,
    })
    clock.advance(10)
    assert.deepEqual(counts(b.e0), {
      inflight: 1,
      prefillTokens: 1000,
      prefillRequests: 1,
      kvTokens: 1200,
    })
    lease.end(ok)
    // A request that ends within the moment takes its guess with it: short requests leave none.
    const short = b.e0.begin({ prefillTokens: 10 })
    assert.equal(b.e0.inflight, 2)
    short.end(ok)
    assert.equal(b.e0.inflight, 0)
  })

  it('lets each placement’s guess lapse on its own, so steady traffic never builds one up', () => {
    const { clock, a, b } = twoReplicas()
    a.e0.begin({ prefillTokens: 1 }).end(ok)
    clock.advance(10)
    // One request at a time, 2 ms apart: a guess renewed by each would never lapse.
    for (let i = 0; i < 100; i++) {
      const lease = b.e0.begin({ prefillTokens: 10 })
      clock.advance(1)
      lease.end(ok)
      clock.advance(1)
      assert.ok(b.e0.inflight <= 2, `placement ${i}: ${b.e0.inflight} in flight`)
    }
    assert.equal(b.e0.peers.inflight, 0, 'the metrics show what was announced, not the guess')
    clock.advance(10)
    assert.equal(b.e0.inflight, 0)
  })

  it('keeps a busy replica’s work while it re-announces it, and drops it three heartbeats after it goes quiet', () => {
    const { clock, a, b } = twoReplicas()
    a.e0.begin({ prefillTokens: 100 })
    clock.advance(10)
    assert.equal(b.e0.inflight, 1)
    clock.advance(5000)
    assert.equal(b.e0.inflight, 1, 'heartbeats keep it counted')
    a.peers.close()
    clock.advance(3500)
    assert.equal(b.e0.inflight, 0, 'a replica that died leaves nothing counted behind it')
  })

  it('tells the others an endpoint that left carries none of its work, and stops re-announcing it', () => {
    const { clock, a, b } = twoReplicas()
    const lease = a.e0.begin({ prefillTokens: 100 })
    clock.advance(10)
    assert.equal(b.e0.inflight, 1)
    a.peers.left(a.e0)
    clock.advance(10)
    assert.equal(b.e0.inflight, 0)
    clock.advance(5000)
    assert.equal(b.e0.inflight, 0, 'no heartbeat brings it back')
    lease.end(ok)
  })

  it('tells the others what it has sent the engine, and a heartbeat repeating it keeps when that was heard', () => {
    const { clock, a, b } = twoReplicas()
    a.e0.begin({ prefillTokens: 1000 })
    clock.advance(10)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 300, heardAtMs: 3 }])
    assert.deepEqual(b.peers.othersSent('e1'), [])
    assert.ok(b.heard.includes('e0'), 'the group is told, for its pacer')
    clock.advance(2000)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 300, heardAtMs: 3 }])
  })

  it('times what a replica has sent from when that total last changed, and tells the pacer only of changes', () => {
    const { clock, a, b } = twoReplicas()
    const first = a.e0.begin({ prefillTokens: 200 })
    clock.advance(10)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 200, heardAtMs: 3 }])
    const heardBefore = b.heard.length
    a.e0.begin({ prefillTokens: 50 }) // sent now: min(300, 250) = 250
    clock.advance(10)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 250, heardAtMs: 13 }])
    assert.equal(b.heard.length, heardBefore + 1, 'b’s pacer is told of the change')
    first.firstToken()
    clock.advance(10)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 50, heardAtMs: 23 }])
    // A heartbeat that repeats the same counts tells the pacer nothing.
    const heardNow = b.heard.length
    clock.advance(2000)
    assert.equal(b.heard.length, heardNow)
  })

  it('takes all the prefill of a replica from before the sent count as sent', () => {
    const { clock, state, b } = twoReplicas()
    void state.publish('load:fleet', 'older\n{"op":"load","loads":[["e0",1,700,1,800,0]]}')
    clock.advance(10)
    assert.deepEqual(b.peers.othersSent('e0'), [{ tokens: 700, heardAtMs: 1 }])
    assert.equal(b.e0.pendingPrefillTokens, 700)
  })

  it('sends the changes of one burst as one message', () => {
    const { clock, a, published } = twoReplicas()
    for (let i = 0; i < 5; i++) a.e0.begin({ prefillTokens: 100 })
    for (let i = 0; i < 5; i++) a.e1.begin({ prefillTokens: 100 })
    clock.advance(10)
    assert.equal(published(), 1)
  })

  it('ignores an announcement that is not one, and says so', () => {
    const { clock, state, errors, b } = twoReplicas()
    for (const loads of [
      '[["e0",-1,0,0,0,0]]',
      '"e0"',
      '[["e0",1.5,0,0,0,0]]',
      '[["e0",1,1e300,0,0,0]]',
    ]) {
      void state.publish('load:fleet', `someone\n{"op":"load","loads":${loads}}`)
    }
    clock.advance(10)
    assert.equal(errors.length, 8, 'each replica says so of each')
    assert.equal(b.e0.inflight, 0)
  })

  it('holds nothing of a sender it stopped hearing, busy or idle, nor of endpoints it does not route to', () => {
    const { clock, state, b } = twoReplicas()
    // Anyone who can publish on the channel (a hostile client, a replica of another
    // configuration, replicas restarted again and again while idle) sends under a new id each time.
    for (let i = 0; i < 200; i++) {
      const loads = [
        ['e0', 0, 0, 0, 0, 0, 5],
        ...Array.from({ length: 50 }, (_, j) => [`x${j}`, 0, 0, 0, 0, 0]),
      ]
      void state.publish('load:fleet', `sender-${i}\n${JSON.stringify({ op: 'load', loads })}`)
    }
    clock.advance(10)
    assert.equal(
      b.peers.heldEntries,
      200,
      'one entry a sender for the endpoint it routes to, none for the others',
    )
    assert.equal(b.peers.othersSent('e0').length, 200)
    clock.advance(4000)
    assert.equal(b.peers.heldEntries, 0, 'quiet for three heartbeats, they are forgotten')
    assert.deepEqual(b.peers.othersSent('e0'), [], 'and their pacers’ prompts with them')
  })
})
