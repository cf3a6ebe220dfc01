import { createPeerChannel } from '../state/peer-channel.ts'
import type { StateStore } from '../state/state-store.ts'
import type { Clock, Timer } from '../util/clock.ts'
import { type Endpoint, NO_ROUTER_LOAD, type RouterLoad } from './endpoint.ts'
import { type LoadEntry, type LoadMessage, parseLoads, tokenCount } from './load-message.ts'

/**
 * Router-side accounting shared between router replicas. Each replica counts the work it placed on
 * each endpoint at dispatch, first token and completion (`Endpoint`); alone, it sees only its own
 * share, so with two replicas every endpoint looks half as busy as it is, and what the engines'
 * scraped metrics correct comes a scrape late. Each replica announces its own counts on the shared
 * state's pub/sub, and adds the others' to its endpoints, so every replica places requests knowing
 * the whole fleet's in-flight prefill, KV and requests.
 */
export interface LoadPeers {
  /** This router's own work on `endpoint` changed: announced within `FLUSH_MS`, with the rest. */
  changed(endpoint: Endpoint): void
  /**
   * `endpoint` is no longer a member (a reload removed it, or gave its id to another server): the
   * other replicas are told it carries none of this router's work. What still runs on the old
   * server ends unannounced.
   */
  left(endpoint: Endpoint): void
  /**
   * Adds the other replicas' announced work to the endpoints `member.find` names (ids this router
   * does not have are ignored). Returns the function that stops listening.
   */
  listen(member: LoadPeersMember): () => void
  /**
   * Prompts the other replicas sent the endpoint that had no first token yet when they last said
   * so (their pacers may hold more), each with when that was heard.
   */
  othersSent(
    endpointId: string,
  ): ReadonlyArray<{ readonly tokens: number; readonly heardAtMs: number }>
  /** Entries held of the other replicas' announcements, one per replica and endpoint: for tests. */
  readonly heldEntries: number
  /** Stops the timers; what is not yet announced is not. */
  close(): void
}

export interface LoadPeersOptions {
  /** One channel per upstream group: its endpoint ids mean the same servers to every replica. */
  readonly channel: string
}

/** Changes within this long go out as one message: a burst costs one publish, not one each. */
const FLUSH_MS = 2
/**
 * A replica with work in flight re-announces it this often, and a replica's counts not heard for
 * three of these are dropped: a replica that died leaves nothing counted behind it.
 */
const HEARTBEAT_MS = 1_000
/**
 * How long after this router places work the other replicas' placements of the same moment
 * cannot have been heard yet: the flush plus the store's delivery (see the burst guess).
 */
const BLIND_MS = FLUSH_MS + 2

/** The upstream group on this router that the announcements are about. */
export interface LoadPeersMember {
  /** The member endpoint with this id, if any: the others' work is added to it. */
  find(endpointId: string): Endpoint | undefined
  /** Told when what the others have sent an endpoint's engine changed, once it is applied. */
  heard?(endpointId: string): void
  /**
   * Of this router's pending prefill on an endpoint, what it has sent the engine (a pacer holds
   * the rest); all of it when absent.
   */
  sentPrefillTokens?(endpoint: Endpoint): number
}

interface Guesses {
  /** Oldest first: what each recent placement of this router guesses the others placed. */
  readonly entries: Array<{ readonly untilMs: number; readonly load: RouterLoad }>
  timer: Timer | undefined
}

function plus(a: RouterLoad, b: RouterLoad): RouterLoad {
  if (b.inflight === 0) return a
  if (a.inflight === 0) return b
  return {
    inflight: a.inflight + b.inflight,
    prefillTokens: a.prefillTokens + b.prefillTokens,
    prefillRequests: a.prefillRequests + b.prefillRequests,
    kvTokens: a.kvTokens + b.kvTokens,
  }
}

/** One other replica, as heard: when last, and its counts per endpoint. */
interface Sender {
  heardAtMs: number
  readonly endpoints: Map<string, Heard>
}

interface Heard {
  load: RouterLoad
  /** The sender's running count of prefills done here: what grew since is counted as done. */
  prefillsDone: number
  atMs: number
  /**
   * Its prompts sent to the engine with no first token yet, and when that total last changed: a
   * pacer times them all from then. That errs late while the sender keeps sending, holding a
   * pacer's head until the aging bound at most; timing each addition from when it was heard
   * instead measured worse on every two-router replay (docs/benchmarks.md, "Router replicas
   * pacing together").
   */
  sent: SentTokens
}

interface SentTokens {
  readonly tokens: number
  readonly heardAtMs: number
}

const NOTHING_SENT: SentTokens = Object.freeze({ tokens: 0, heardAtMs: 0 })

/** Longest message heard, in characters: about 40 per endpoint, so 6,000 endpoints. */
const MAX_MESSAGE_CHARS = 256 * 1024
const STALE_HEARTBEATS = 3

export function createLoadPeers(
  options: LoadPeersOptions,
  deps: {
    readonly state: StateStore
    readonly clock: Clock
    /** A publish that failed or a message that made no sense: told, never thrown. */
    readonly onError?: (error: unknown) => void
  },
): LoadPeers {
  const { clock } = deps
  const staleMs = STALE_HEARTBEATS * HEARTBEAT_MS
  const onError = deps.onError ?? (() => {})
  const channel = createPeerChannel(
    { channel: options.channel, maxMessageChars: MAX_MESSAGE_CHARS, what: 'load announcement' },
    { state: deps.state, onError },
  )
  let isClosed = false

  // Announcing: endpoints changed since the last message, and those with work in flight.
  const dirty = new Set<Endpoint>()
  const busy = new Set<Endpoint>()
  const gone = new Set<string>()
  let flushTimer: Timer | undefined
  let heartbeatTimer: Timer | undefined
  const flush = () => {
    flushTimer = undefined
    // An endpoint that left goes first: a member that took its id since is told after it.
    const loads: LoadEntry[] = [...gone].map((endpointId) => [endpointId, 0, 0, 0, 0, 0, 0])
    gone.clear()
    for (const endpoint of dirty) {
      const own = endpoint.own
      loads.push([
        endpoint.id,
        own.inflight,
        tokenCount(own.prefillTokens),
        own.prefillRequests,
        tokenCount(own.kvTokens),
        own.prefillsDone,
        tokenCount(member?.sentPrefillTokens?.(endpoint) ?? own.prefillTokens),
      ])
      if (own.inflight > 0) busy.add(endpoint)
      else busy.delete(endpoint)
    }
    dirty.clear()
    if (loads.length > 0) channel.send({ op: 'load', loads } satisfies LoadMessage)
    if (busy.size > 0 && heartbeatTimer === undefined) {
      heartbeatTimer = clock.setTimer(HEARTBEAT_MS, heartbeat)
    }
  }
  const heartbeat = () => {
    heartbeatTimer = undefined
    for (const endpoint of busy) changed(endpoint)
  }
  // The replicas place a burst at the same moment, each blind to the others' share until their
  // announcements arrive; seeing the same fleet, they would all send their first requests to the
  // same least-loaded endpoint and overshoot it. So for `BLIND_MS` after this router places work,
  // it counts each other live replica as having placed as much there too (they get as much
  // traffic, and see what this router sees). Each placement's guess lapses on its own, so under
  // steady traffic the guess is at most the last `BLIND_MS` of placements.
  const lastOwn = new Map<Endpoint, RouterLoad>()
  const guesses = new Map<string, Guesses>()
  const guess = (endpoint: Endpoint) => {
    const own = endpoint.own
    const before = lastOwn.get(endpoint) ?? NO_ROUTER_LOAD
    if (own.inflight === 0) lastOwn.delete(endpoint)
    else lastOwn.set(endpoint, own)
    const replicas = livePeers()
    const placed = own.inflight - before.inflight
    if (placed < 0) {
      // Work ended here before its guess lapsed: the others' work of that moment, like short
      // requests' anywhere, has likely ended too. The oldest guesses go first.
      const pending = guesses.get(endpoint.id)
      if (pending === undefined) return
      pending.entries.splice(0, -placed)
      if (pending.entries.length === 0) {
        pending.timer?.clear()
        guesses.delete(endpoint.id)
      }
      apply(endpoint.id, 0)
      return
    }
    if (replicas === 0 || placed === 0) return
    const grown = (now: number, was: number) => replicas * Math.max(0, now - was)
    let pending = guesses.get(endpoint.id)
    if (pending === undefined) {
      pending = { entries: [], timer: undefined }
      guesses.set(endpoint.id, pending)
    }
    pending.entries.push({
      untilMs: clock.now() + BLIND_MS,
      load: {
        inflight: replicas * placed,
        prefillTokens: grown(own.prefillTokens, before.prefillTokens),
        prefillRequests: grown(own.prefillRequests, before.prefillRequests),
        kvTokens: grown(own.kvTokens, before.kvTokens),
      },
    })
    if (pending.timer === undefined) lapse(endpoint.id, pending)
    apply(endpoint.id, 0)
  }
  // Arms the timer for the oldest guess of an endpoint; each firing drops those due.
  const lapse = (endpointId: string, pending: Guesses) => {
    const oldest = pending.entries[0]
    if (oldest === undefined) {
      guesses.delete(endpointId)
      return
    }
    pending.timer = clock.setTimer(oldest.untilMs - clock.now(), () => {
      pending.timer = undefined
      const nowMs = clock.now()
      while (pending.entries.length > 0 && pending.entries[0]!.untilMs <= nowMs) {
        pending.entries.shift()
      }
      lapse(endpointId, pending)
      apply(endpointId, 0)
    })
  }
  const changed = (endpoint: Endpoint) => {
    if (isClosed) return
    guess(endpoint)
    dirty.add(endpoint)
    flushTimer ??= clock.setTimer(FLUSH_MS, flush)
  }

  // Hearing: each sender's last counts per endpoint.
  const senders = new Map<string, Sender>()
  const livePeers = () => {
    const nowMs = clock.now()
    let live = 0
    for (const sender of senders.values()) if (nowMs - sender.heardAtMs < staleMs) live++
    return live
  }
  let sweepTimer: Timer | undefined
  let member: LoadPeersMember | undefined
  const find = (endpointId: string) => member?.find(endpointId)
  const apply = (endpointId: string, prefillsDone: number) => {
    const endpoint = find(endpointId)
    if (endpoint === undefined) return
    let announced = NO_ROUTER_LOAD
    for (const sender of senders.values()) {
      const heard = sender.endpoints.get(endpointId)
      if (heard !== undefined) announced = plus(announced, heard.load)
    }
    let guessed = NO_ROUTER_LOAD
    for (const entry of guesses.get(endpointId)?.entries ?? []) guessed = plus(guessed, entry.load)
    endpoint.setPeerLoad(announced, guessed, prefillsDone)
  }
  // Runs while anything is held, idle entries included: a sender's id is new at each start, and
  // anyone who can publish on the channel can send under as many ids as they like, so what is
  // kept of a sender not heard from lately must go whether or not it had work in flight.
  const sweep = () => {
    sweepTimer = undefined
    const nowMs = clock.now()
    for (const [id, { endpoints: heard }] of senders) {
      for (const [endpointId, entry] of heard) {
        if (nowMs - entry.atMs < staleMs) continue
        heard.delete(endpointId)
        if (entry.load.inflight > 0) apply(endpointId, 0)
      }
      if (heard.size === 0) senders.delete(id)
    }
    if (senders.size > 0) sweepTimer = clock.setTimer(HEARTBEAT_MS, sweep)
  }
  const hear = (value: unknown, sender: string) => {
    const loads = parseLoads(value)
    if (loads === undefined) {
      onError(new Error('ignored a load announcement that is not one'))
      return
    }
    const nowMs = clock.now()
    let from = senders.get(sender)
    for (const entry of loads) {
      const [endpointId, inflight, prefillTokens, prefillRequests, kvTokens, done] = entry
      // An id this router does not route to is nothing to it, and would only take memory (a
      // reload that adds it hears its count again with the sender's next announcement).
      if (find(endpointId) === undefined) continue
      if (from === undefined) {
        from = { heardAtMs: nowMs, endpoints: new Map() }
        senders.set(sender, from)
      }
      from.heardAtMs = nowMs
      const heard = from.endpoints
      // A replica of before the sent count says nothing of its pacer: all of it is sent.
      const sent = entry[6] ?? prefillTokens
      const before = heard.get(endpointId)
      const sentBefore = before?.sent ?? NOTHING_SENT
      const sentChanged = sent !== sentBefore.tokens
      // First heard: how many of its prefills ended before is not news.
      const newlyDone = before === undefined ? 0 : Math.max(0, done - before.prefillsDone)
      heard.set(endpointId, {
        load: { inflight, prefillTokens, prefillRequests, kvTokens },
        prefillsDone: done,
        atMs: nowMs,
        sent: !sentChanged
          ? sentBefore
          : sent > 0
            ? { tokens: sent, heardAtMs: nowMs }
            : NOTHING_SENT,
      })
      apply(endpointId, newlyDone)
      // A pacer is timed again only when what the engine has to prefill changed.
      if (sentChanged) member?.heard?.(endpointId)
    }
    if (from !== undefined) sweepTimer ??= clock.setTimer(HEARTBEAT_MS, sweep)
  }

  return {
    changed,
    left(endpoint) {
      if (isClosed) return
      dirty.delete(endpoint)
      busy.delete(endpoint)
      lastOwn.delete(endpoint)
      gone.add(endpoint.id)
      flushTimer ??= clock.setTimer(FLUSH_MS, flush)
    },
    listen(group) {
      member = group
      const stop = channel.listen(hear)
      return () => {
        stop()
        member = undefined
      }
    },
    get heldEntries() {
      let held = 0
      for (const sender of senders.values()) held += sender.endpoints.size
      return held
    },
    othersSent(endpointId) {
      const sent: SentTokens[] = []
      for (const sender of senders.values()) {
        const entry = sender.endpoints.get(endpointId)
        if (entry !== undefined && entry.sent.tokens > 0) sent.push(entry.sent)
      }
      return sent
    },
    close() {
      isClosed = true
      for (const timer of [flushTimer, heartbeatTimer, sweepTimer]) timer?.clear()
      for (const { timer } of guesses.values()) timer?.clear()
      guesses.clear()
      flushTimer = heartbeatTimer = sweepTimer = undefined
      dirty.clear()
      busy.clear()
    },
  }
}
