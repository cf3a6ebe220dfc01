import { type AdmissionQueue, createAdmissionQueue } from '../resilience/admission-queue.ts'
import type { AdmissionTicket } from '../resilience/admission-types.ts'
import type { Clock, Timer } from '../util/clock.ts'

export interface PrefillPacerOptions {
  /**
   * The next prompt is sent this long before the engine is predicted to finish the prefill it
   * already has, so that it is queued there when that work ends but does not ride in its steps.
   */
  readonly leadMs: number
  /** How long shorter prompts may keep going ahead of a waiting one. */
  readonly agingMs: number
  /** Fixed per-request time an engine spends before prefill (tokenising, scheduling), ms. */
  readonly overheadMs: number
  /**
   * Prompts go out together while what is sent and still prefilling stays within this many
   * tokens: short prompts share a step at little cost to each other, and when decode makes the
   * steps memory-bound they ride in it almost for free.
   */
  readonly batchTokens: number
  /**
   * When at least this many prompts are held for an endpoint, the next one is timed by when the
   * engine is predicted to finish the prefill it has with those sent sharing its steps, rather
   * than one after another. Under a backlog of short prompts that share steps, timed one after
   * another, each batch would go only when the last one's first token frees room, reach the
   * engine after its next step has started, and leave that step short of prefill while
   * everything held waits. 0 always times it so. A prompt expected half cached or more is always
   * timed late: sent early, warm prompts cost the conversation replays both hits and TTFT
   * (docs/llm-routing.md, "Prefill pacing").
   */
  readonly backlogPrompts: number
  /**
   * When an engine has none of this router's prefill left and nothing held for it, the cold
   * prompt held longest for another engine still busy moves: its dispatcher has the policy place
   * it again. A cold prompt owes its engine nothing, and held behind shorter prompts that keep
   * arriving there (shortest first) it may wait while another engine goes idle. Off when false.
   */
  readonly moveColdToIdle?: boolean
}

export interface PrefillPacerDeps {
  readonly clock: Clock
  /** The endpoint's current prefill rate, tokens/s (learned online). */
  readonly prefillTokensPerSec: (endpointId: string) => number
  /** The endpoint's current decode step (inter-token gap), ms (learned online). */
  readonly decodeStepMs: (endpointId: string) => number
  /**
   * Prompts other router replicas sent the endpoint that had no first token yet when they last
   * said so: how many tokens, and when that was heard (see `load-peers.ts`). The pacer treats the
   * engine as busy with them until it would have prefilled them, counted from then, so a replica
   * that goes quiet holds nobody up for longer than its prompts take.
   */
  readonly othersSent?: ((endpointId: string) => readonly SentByOthers[]) | undefined
  /** A prompt was released to the endpoint: for announcing it to the other replicas. */
  readonly onRelease?: ((endpointId: string) => void) | undefined
  /** A held prompt was given up for an idle engine (`moveColdToIdle`). */
  readonly onMove?: (() => void) | undefined
}

export interface SentByOthers {
  readonly tokens: number
  readonly heardAtMs: number
}

/** One prompt's passage through the pacer. */
export interface PacedPrefill {
  /**
   * Called once, when the prompt may be sent to the engine; or `move` is, instead, when the
   * pacer gives a held cold prompt up for an idle engine (`moveColdToIdle`): the dispatcher then
   * ends its placement (`done(false)`, the policy's `unsent`) and has the policy place it again.
   * Without `move` the prompt is never moved. `shed` is called instead of both when the pacer
   * gives the prompt up unsent (`shed()`, a shutdown's drain ran out); without it the prompt is
   * released then.
   */
  readonly whenReleased: (release: () => void, move?: () => void, shed?: () => void) => void
  /**
   * The engine's first token came, or the request ended: its prefill no longer occupies the
   * engine. Before release it withdraws the prompt from the queue (the client went away).
   * `isFirstToken` says the first token came, which times the engine's prefill.
   */
  done(isFirstToken: boolean): void
  /**
   * What capacity learning should see of this prompt: its prefill began when the engine could
   * start it (its release, or the first token of the prompt released before it if that came
   * later) with nothing of ours ahead, and did its own tokens plus those of prompts that finished
   * prefill in the same step. Meaningful once its first token came.
   */
  prefillEvidence(): PrefillEvidence
}

/** The prefill facts behind one TTFT sample for capacity learning. */
export interface PrefillEvidence {
  readonly sentAtMs: number
  readonly prefillAheadTokens: number
  readonly prefillTokens: number
}

/** The evidence of a paced prompt, or `unpaced` as measured at dispatch when there was no pacer. */
export function prefillEvidenceOf(
  paced: PacedPrefill | undefined,
  unpaced: PrefillEvidence,
): PrefillEvidence {
  return paced ? paced.prefillEvidence() : unpaced
}

export interface PrefillPacer {
  /**
   * A placed prompt joins its endpoint's lane: `prefillTokens` of its `promptTokens` are what the
   * policy expects the engine to compute, the rest cached (without `promptTokens`, nothing is).
   */
  enter(endpointId: string, prefillTokens: number, promptTokens?: number): PacedPrefill
  /** Prompts held now, all endpoints together. */
  readonly held: number
  /** Prompts held now for one endpoint. */
  heldFor(endpointId: string): number
  /** Prefill tokens sent to one endpoint whose first token has not come: what it is computing. */
  sentPrefillTokens(endpointId: string): number
  /** Prefill tokens of the prompts held for one endpoint. */
  heldPrefillTokens(endpointId: string): number
  /** Endpoints with a lane. */
  readonly lanes: number
  /**
   * Forgets the lanes of endpoints not in `keep` that are idle (nothing held, nothing sent still
   * prefilling). A busy one releases what it holds at once (the dispatcher places those requests
   * elsewhere) and is forgotten by a later call once idle. The lanes of ids in `moved`, which now
   * name another server, are let go at once: the old server's prompts finish on the old lane, and
   * the new server gets a lane of its own.
   */
  retainOnly(keep: ReadonlySet<string>, moved?: ReadonlySet<string>): void
  /** What other replicas sent the endpoint changed: held prompts may go now. */
  poke(endpointId: string): void
  /**
   * A shutdown's drain ran out: every prompt held now, and each that would be held from now on,
   * is given up unsent (its `shed`), so its client hears a 503 it may retry elsewhere rather
   * than being cut.
   */
  shed(): void
  /** Releases everything held (nothing is dropped) and stops the timers. */
  close(): void
}

interface Waiting {
  readonly tokens: number
  release: (() => void) | undefined
  /** Set while it is held and may move (see `moveColdToIdle`). */
  move: (() => void) | undefined
  /** Set while it is held: how to give it up unsent (see `shed`). */
  shed: (() => void) | undefined
  /** Its place in the lane's queue while held. */
  ticket: AdmissionTicket<Waiting> | undefined
  heldAtMs: number
  isReleased: boolean
  releasedAtMs: number
  startMs: number
  /** Its own tokens, plus those of prompts that finished prefill in its last step. */
  servedTokens: number
  /** The policy expects much of it cached: it is never sent by the shared-step estimate. */
  readonly isWarm: boolean
}

interface Lane {
  readonly queue: AdmissionQueue<Waiting>
  /**
   * When the prefill already sent is predicted to end, on the clock's timeline, if the engine
   * took the prompts one after another, each with its own overhead. It errs late when prompts
   * share steps, which with a shallow backlog is what we want: a prompt held a little longer is
   * ordered against more arrivals, and the engine loses at most one decode step.
   */
  busyUntilMs: number
  /**
   * The same end, predicted with the prompts sent sharing the engine's steps (one overhead for a
   * batch sent together) and re-anchored at every first token to what is still prefilling:
   * what a deep backlog is timed by (`backlogPrompts`).
   */
  sharedEndMs: number
  releasedCount: number
  releasedTokens: number
  timer: Timer | undefined
  /** When the last released prompt got its first token: the next one's prefill began then. */
  lastFirstTokenMs: number
  /** Observed prefill service: tokens over seconds, decayed, for predicting `busyUntilMs`. */
  servedTokens: number
  servedSeconds: number
  servedAtMs: number
  lastServed: Waiting | undefined
  /** Its endpoint left the upstream: nothing is held for it any more (see `retainOnly`). */
  departed: boolean
  /** Cold prompts held here that may move to an idle engine, oldest first. */
  readonly movable: Set<Waiting>
}

/** How much the policy's learned rate weighs against observed service, in seconds of it. */
const PRIOR_SECONDS = 0.25
const STEP_LEADS = 1
/** First tokens at most this far apart (and a quarter decode step) came from one engine step. */
const SAME_STEP_MS = 2
const SERVICE_HALF_LIFE_MS = 60_000

/**
 * A prompt is warm when the policy expects at least this share of it cached. Any hit would do for
 * conversations, but a system prompt that every request shares would then make every prompt warm.
 */
const WARM_CACHED_SHARE = 0.5

/** Waiting is bounded by the client's own timeout, never by the pacer. */
const NO_DEADLINE_MS = 24 * 3600_000

/**
 * Paces prompts into each engine one prefill at a time, shortest first. An engine batches every
 * waiting prompt into its next step up to its token budget, so a short prompt that arrives with a
 * long one gets its first token only when the whole shared step ends, and under FCFS it also waits
 * behind whatever arrived first. Holding each endpoint's prompts at the router (after placement:
 * the policy's accounting already counts them) and sending the next one just before the engine is
 * predicted to finish the prefill it has gives each prompt steps of its own, in shortest-predicted
 * order with aging (the one admission queue's order), without leaving the engine idle: when
 * nothing sent is still prefilling, the next prompt goes at once.
 */
export function createPrefillPacer(
  options: PrefillPacerOptions,
  deps: PrefillPacerDeps,
): PrefillPacer {
  const { clock } = deps
  const lanes = new Map<string, Lane>()
  let isClosed = false
  /** `shed()` came: nothing is held any more. */
  let isShed = false

  const laneFor = (endpointId: string): Lane => {
    let lane = lanes.get(endpointId)
    if (!lane) {
      lane = {
        queue: createAdmissionQueue<Waiting>(
          {
            order: 'shortest-predicted-first',
            maxBypassMs: options.agingMs,
            defaultMaxWaitMs: NO_DEADLINE_MS,
            maxEntries: Number.MAX_SAFE_INTEGER,
            maxBytes: Number.MAX_SAFE_INTEGER,
          },
          { clock },
        ),
        busyUntilMs: 0,
        sharedEndMs: 0,
        releasedCount: 0,
        releasedTokens: 0,
        timer: undefined,
        lastFirstTokenMs: 0,
        servedTokens: 0,
        servedSeconds: 0,
        servedAtMs: 0,
        lastServed: undefined,
        departed: false,
        movable: new Set(),
      }
      lanes.set(endpointId, lane)
    }
    return lane
  }

  /** Takes the prompt off hold: none of its ways out (release, move, shed) may run again. */
  const unhold = (lane: Lane, waiting: Waiting): void => {
    lane.movable.delete(waiting)
    waiting.release = undefined
    waiting.move = undefined
    waiting.shed = undefined
  }

  const release = (endpointId: string, lane: Lane, waiting: Waiting): void => {
    const nowMs = clock.now()
    const rate = serviceRate(endpointId, lane)
    const prefillMs = (waiting.tokens / rate) * 1000
    waiting.releasedAtMs = nowMs
    waiting.startMs = nowMs
    lane.busyUntilMs = Math.max(nowMs, lane.busyUntilMs) + options.overheadMs + prefillMs
    lane.sharedEndMs =
      Math.max(nowMs, lane.sharedEndMs) +
      (lane.releasedCount === 0 ? options.overheadMs : 0) +
      prefillMs
    lane.releasedCount++
    lane.releasedTokens += waiting.tokens
    const go = waiting.release
    unhold(lane, waiting)
    waiting.isReleased = true
    go?.()
    deps.onRelease?.(endpointId)
  }

  // The prompts other replicas sent, taken one after another in the order they were heard, each
  // from when it was heard: when the engine is predicted to have prefilled them (0 when it
  // already has), and how many of their tokens it has not.
  const others = { endMs: 0, tokens: 0 }
  const othersAt = (endpointId: string, lane: Lane, nowMs: number): typeof others => {
    others.endMs = 0
    others.tokens = 0
    const sent = deps.othersSent?.(endpointId)
    if (sent === undefined || sent.length === 0) return others
    const ordered = sent.length === 1 ? sent : [...sent].sort((a, b) => a.heardAtMs - b.heardAtMs)
    const rate = serviceRate(endpointId, lane)
    let endMs = 0
    for (const { tokens, heardAtMs } of ordered) {
      if (tokens <= 0) continue
      endMs = Math.max(endMs, heardAtMs) + options.overheadMs + (tokens / rate) * 1000
      if (endMs > nowMs) others.tokens += tokens
    }
    if (endMs > nowMs) others.endMs = endMs
    return others
  }

  // What the engine takes per prompt token once it is its turn, learned from the prompts paced
  // into it (their first token minus when their prefill could start), so that it includes the
  // decode work that shares the steps; the policy's learned rate is the prior.
  const serviceRate = (endpointId: string, lane: Lane): number => {
    const prior = Math.max(1, deps.prefillTokensPerSec(endpointId))
    return (lane.servedTokens + PRIOR_SECONDS * prior) / (lane.servedSeconds + PRIOR_SECONDS)
  }

  const learn = (endpointId: string, lane: Lane, waiting: Waiting, nowMs: number): void => {
    waiting.startMs = Math.max(waiting.releasedAtMs, lane.lastFirstTokenMs)
    const startMs = Math.max(waiting.releasedAtMs + options.overheadMs, lane.lastFirstTokenMs)
    // The first tokens of one engine step reach the router a little apart, each response in its
    // own socket read: within a fraction of a decode step they are one step's, not a step of
    // their own that took that fraction of a millisecond.
    const decodeStepMs = deps.decodeStepMs(endpointId)
    const sameStepMs = decodeStepMs > 0 ? Math.min(SAME_STEP_MS, decodeStepMs / 4) : SAME_STEP_MS
    const isSameStep =
      lane.lastServed !== undefined &&
      waiting.releasedAtMs <= lane.lastFirstTokenMs &&
      nowMs - lane.lastFirstTokenMs <= sameStepMs
    if (nowMs <= startMs || isSameStep) {
      // Prefilled in the same step as the prompt before it: that prompt's interval did this
      // one's work too, and this one has no interval of its own to learn from.
      if (isSameStep && lane.lastServed) {
        lane.lastServed.servedTokens += waiting.tokens
        lane.servedTokens += waiting.tokens
        waiting.startMs = nowMs
      }
      return
    }
    lane.lastFirstTokenMs = nowMs
    lane.lastServed = waiting
    const decay = 0.5 ** ((nowMs - lane.servedAtMs) / SERVICE_HALF_LIFE_MS)
    lane.servedTokens = lane.servedTokens * decay + waiting.tokens
    lane.servedSeconds = lane.servedSeconds * decay + (nowMs - startMs) / 1000
    lane.servedAtMs = nowMs
  }

  // The idle engine is the news: the cold prompt held longest for one still busy with this
  // router's prefill is given up. Where it goes is the policy's to decide again (the idle engine
  // may have no KV room for it), not sent to the idle one blindly.
  const moveToIdle = (idleId: string, idle: Lane): void => {
    if (!options.moveColdToIdle || isClosed || idle.departed) return
    if (othersAt(idleId, idle, clock.now()).endMs > 0) return
    let oldest: Waiting | undefined
    let from: Lane | undefined
    for (const [endpointId, lane] of lanes) {
      if (endpointId === idleId || lane.departed || lane.releasedCount === 0) continue
      // Insertion order: the first is the one held longest.
      const first = lane.movable.values().next().value
      if (first !== undefined && (oldest === undefined || first.heldAtMs < oldest.heldAtMs)) {
        oldest = first
        from = lane
      }
    }
    if (oldest === undefined || from === undefined) return
    const move = oldest.move!
    unhold(from, oldest)
    oldest.ticket?.cancel()
    deps.onMove?.()
    move()
  }

  const pump = (endpointId: string, lane: Lane): void => {
    while (lane.queue.size > 0) {
      const nowMs = clock.now()
      // A prompt sent later than one step before the end misses the next step: the engine would
      // run a decode-only step first, which at high load is tens of milliseconds of prefill lost.
      const head = lane.queue.peek()
      const isEarly =
        head !== undefined && !head.value.isWarm && lane.queue.size >= options.backlogPrompts
      const ownEndMs = isEarly ? lane.sharedEndMs : lane.busyUntilMs
      const stepMs = STEP_LEADS * deps.decodeStepMs(endpointId)
      // Other replicas' prompts at the engine count as its prefill too, as this router's do, but
      // hold the head back no longer than the aging bound: the replicas' pacers do not take turns
      // shortest first, and one with a backlog would otherwise keep the engine to itself.
      const { endMs: othersEndMs, tokens: othersTokens } = othersAt(endpointId, lane, nowMs)
      const othersMs =
        othersEndMs > 0 && head !== undefined
          ? Math.min(othersEndMs, head.enqueuedAtMs + options.agingMs + options.leadMs + stepMs)
          : othersEndMs
      const endMs = Math.max(othersMs, ownEndMs)
      const openAtMs = endMs - options.leadMs - stepMs
      const fits =
        head !== undefined &&
        lane.releasedTokens + othersTokens + head.value.tokens <= options.batchTokens
      const isBusy = lane.releasedCount > 0 || othersMs > 0
      if (isBusy && nowMs < openAtMs && !isClosed && !lane.departed && !fits) {
        // An armed timer stands even when a first token or the backlog reaching `backlogPrompts`
        // brings the time forward: the new estimate times the releases after it. Pulling it
        // forward cost TTFT on the Mooncake spread replays near their knee and changed nothing on
        // Azure.
        if (!lane.timer) {
          lane.timer = clock.setTimer(openAtMs - nowMs, () => {
            lane.timer = undefined
            pump(endpointId, lane)
          })
        }
        return
      }
      const entry = lane.queue.tryAdmit()
      if (!entry) return
      release(endpointId, lane, entry.value)
    }
  }

  return {
    get held() {
      let count = 0
      for (const lane of lanes.values()) count += lane.queue.size
      return count
    },
    heldFor: (endpointId) => lanes.get(endpointId)?.queue.size ?? 0,
    sentPrefillTokens: (endpointId) => lanes.get(endpointId)?.releasedTokens ?? 0,
    heldPrefillTokens: (endpointId) => lanes.get(endpointId)?.queue.depth().bytes ?? 0,
    get lanes() {
      return lanes.size
    },
    retainOnly(keep, moved) {
      for (const [endpointId, lane] of lanes) {
        lane.departed = !keep.has(endpointId)
        if (!lane.departed) continue
        lane.timer?.clear()
        lane.timer = undefined
        if (lane.queue.size === 0 && lane.releasedCount === 0) {
          lane.queue.close()
          lanes.delete(endpointId)
        } else {
          // What it holds goes now, for the dispatcher to place elsewhere; waiting out the
          // departed engine's pacing would only delay it.
          pump(endpointId, lane)
          // Kept in the map, the new server's prompts would join the departed lane, go unpaced
          // until the old prompts and theirs all ended, and a later call would revive it.
          if (moved?.has(endpointId) === true) lanes.delete(endpointId)
        }
      }
    },
    enter(endpointId, prefillTokens, promptTokens = prefillTokens) {
      const cachedTokens = promptTokens - prefillTokens
      const lane = laneFor(endpointId)
      const waiting: Waiting = {
        tokens: prefillTokens,
        release: undefined,
        move: undefined,
        shed: undefined,
        ticket: undefined,
        heldAtMs: 0,
        isReleased: false,
        releasedAtMs: 0,
        startMs: 0,
        servedTokens: prefillTokens,
        isWarm: cachedTokens > 0 && cachedTokens >= WARM_CACHED_SHARE * promptTokens,
      }
      let isDone = false
      return {
        whenReleased(go, move, shed) {
          if (isDone) return
          if (waiting.isReleased) return go()
          if (isShed && shed !== undefined) return shed()
          waiting.release = go
          waiting.shed = shed
          // Nothing held and the engine free of prefill: there is no reason to wait.
          if (
            isClosed ||
            (lane.queue.size === 0 &&
              lane.releasedCount === 0 &&
              othersAt(endpointId, lane, clock.now()).endMs === 0)
          ) {
            return release(endpointId, lane, waiting)
          }
          waiting.ticket = lane.queue.enqueue({
            value: waiting,
            predictedCost: Math.max(1, prefillTokens),
            // The queue's size total is then the tokens held (`heldPrefillTokens`).
            sizeBytes: prefillTokens,
          })
          if (move !== undefined && !waiting.isWarm && options.moveColdToIdle) {
            waiting.move = move
            waiting.heldAtMs = clock.now()
            lane.movable.add(waiting)
          }
          pump(endpointId, lane)
        },
        done(isFirstToken) {
          if (isDone) return
          isDone = true
          if (!waiting.isReleased) {
            unhold(lane, waiting)
            waiting.ticket?.cancel()
            return
          }
          lane.releasedCount--
          lane.releasedTokens -= waiting.tokens
          const nowMs = clock.now()
          if (isFirstToken) learn(endpointId, lane, waiting, nowMs)
          if (lane.releasedCount === 0) {
            // The engine has none of our prefill left, whatever it was predicted to still need.
            lane.busyUntilMs = nowMs
            lane.sharedEndMs = nowMs
          } else {
            // What is still prefilling is at most what was sent and has no first token yet.
            lane.sharedEndMs = Math.min(
              lane.sharedEndMs,
              nowMs +
                options.overheadMs +
                (lane.releasedTokens / serviceRate(endpointId, lane)) * 1000,
            )
          }
          pump(endpointId, lane)
          if (lane.queue.size === 0 && lane.releasedCount === 0) moveToIdle(endpointId, lane)
          // The last prompt sent to a departed endpoint is done: nothing is left to pace there.
          if (lane.departed && lane.queue.size === 0 && lane.releasedCount === 0) {
            lane.queue.close()
            if (lanes.get(endpointId) === lane) lanes.delete(endpointId)
          }
        },
        prefillEvidence: () => ({
          sentAtMs: waiting.startMs,
          prefillAheadTokens: 0,
          prefillTokens: waiting.servedTokens,
        }),
      }
    },
    poke(endpointId) {
      const lane = lanes.get(endpointId)
      if (lane === undefined || lane.queue.size === 0) return
      // The news moves the predicted end either way: the lane is timed again from it.
      lane.timer?.clear()
      lane.timer = undefined
      pump(endpointId, lane)
    },
    shed() {
      isShed = true
      for (const [endpointId, lane] of lanes) {
        lane.timer?.clear()
        lane.timer = undefined
        for (
          let entry = lane.queue.tryAdmit();
          entry !== undefined;
          entry = lane.queue.tryAdmit()
        ) {
          const waiting = entry.value
          const giveUp = waiting.shed
          if (giveUp === undefined) {
            // A consumer that cannot be told: it goes, as on close, rather than waiting forever.
            release(endpointId, lane, waiting)
            continue
          }
          unhold(lane, waiting)
          waiting.ticket = undefined
          giveUp()
        }
      }
    },
    close() {
      isClosed = true
      for (const [endpointId, lane] of lanes) {
        lane.timer?.clear()
        lane.timer = undefined
        pump(endpointId, lane)
        lane.queue.close()
      }
    },
  }
}
