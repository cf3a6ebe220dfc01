import type { LlmRequest } from '../../llm/llm-request.ts'
import { createOptimisticInserts, type InsertClaim } from '../../llm/optimistic-inserts.ts'
import { createPrefixBlockIndex, hashPromptBlocks } from '../../llm/prefix-block-index.ts'
import type { PrefixPeers } from '../../llm/prefix-peers.ts'
import { hashText53 } from '../../util/text-hash.ts'
import type { AyaOptions } from './aya-options.ts'

/** What stays true of a request while it waits: see `createPrefixMemory`. */
export interface RequestMemo {
  readonly hashes: number[]
  readonly sessionKey: number | undefined
  /** Predicted when the request was first scored; a request waiting in the queue keeps it. */
  readonly predictedOutput: number
  /**
   * By endpoint slot (see `createPrefixMemory`): the index version the match was taken at, and
   * the match. Made on first use.
   */
  matched: { readonly versions: number[]; readonly blocks: number[] } | undefined
  /** The last attempt's stake in the optimistic inserts where it was placed. */
  placed: InsertClaim | undefined
}

/**
 * The `aya` policy's memory of prompts: which prefix blocks each endpoint is believed to hold
 * (one index for every model an endpoint serves), the optimistic inserts that put them there and
 * may be taken back, and each request's memo.
 */
export interface PrefixMemory {
  /** The request's memo, made (hashed, its output predicted) on first use. */
  memoOf(llm: LlmRequest): RequestMemo
  /** The request's memo if it was ever scored. */
  knownMemo(llm: LlmRequest): RequestMemo | undefined
  /**
   * Each endpoint's match for the prompt, into `out` by position: recomputed only where the
   * endpoint's blocks may have changed since the memo took it, and then in one walk of the prompt
   * for all of them (see `matchedBlocksEach`).
   */
  matchEach(memo: RequestMemo, endpointIds: readonly string[], out: number[]): void
  /**
   * Places the prompt's blocks on the endpoint: the optimistic insert, remembered to be taken
   * back if the attempt fails. `capacityTokens` and `charsPerToken` size the endpoint's index.
   */
  place(
    memo: RequestMemo,
    endpointId: string,
    matchedBlocks: number,
    capacityTokens: number,
    charsPerToken: number,
  ): void
  /** Takes back the optimistic insert of the request's last placement. */
  takeBack(memo: RequestMemo): void
  /**
   * The endpoints the index is about (announcements from other routers about others are dropped),
   * forgetting the blocks of every other endpoint and of those in `forget`.
   */
  retainOnly(ids: ReadonlySet<string>, forget?: ReadonlySet<string>): void
  /** Stops hearing the other routers. */
  close(): void
}

/**
 * Optimistic inserts tracked per endpoint for take-back: far more than prompts in flight or held
 * at once, so only ones sent long ago are forgotten.
 */
const MAX_TRACKED_INSERTS = 4096

/** Weight of one placement in the running characters-per-token ratio. */
const CHARS_PER_TOKEN_SMOOTHING = 0.01

export function createPrefixMemory(
  options: Pick<
    AyaOptions,
    'blockChars' | 'maxPrefixBlocks' | 'minAffinityBlocks' | 'sessionAffinity' | 'sharePrefixIndex'
  >,
  deps: {
    /** The request's predicted output tokens, when LLM signals are there. */
    readonly predictedOutput?: ((llm: LlmRequest) => number) | undefined
    readonly peers?: PrefixPeers | undefined
  },
): PrefixMemory {
  // One index for every model an endpoint serves: block hashes are scoped by served model, and
  // an engine's base model and its LoRA adapters share one KV pool, so their blocks evict each
  // other's there too. An index per model, each sized to the whole pool, would believe an
  // endpoint serving several adapters holds several times what it can.
  const index = createPrefixBlockIndex({
    defaultCapacityBlocks: 1,
    evictTailFirst: true,
    resizeOnCapacityChange: true,
  })
  const peers = options.sharePrefixIndex ? deps.peers : undefined
  // A take-back is news to the other routers too: they heard about the insert.
  const inserts = createOptimisticInserts(
    {
      remove(endpointId, hash) {
        index.remove(endpointId, hash)
        peers?.announceRemoved(endpointId, hash)
      },
    },
    { maxPerEndpoint: MAX_TRACKED_INSERTS },
  )
  // Known once the group first tells its membership; until then, and for any other id, what other
  // routers say is dropped, so a peer with another config cannot grow this router's index.
  let members: ReadonlySet<string> | undefined
  const stopListening = peers?.listen({
    added(endpointId, hashes, capacityBlocks) {
      if (members?.has(endpointId) !== true) return
      // A peer's capacity sizes an endpoint's index only when this router has none yet: each
      // router sizes from its own view (its scrape, its characters per token), and a peer whose
      // view differs must not resize, and so evict, this one's.
      const blocks =
        hashes.length > options.maxPrefixBlocks ? hashes.slice(0, options.maxPrefixBlocks) : hashes
      index.add(endpointId, blocks, index.version(endpointId) === 0 ? capacityBlocks : undefined)
    },
    removed(endpointId, hash) {
      // A block a placement of this router's still brings stays, whoever else gave up on it.
      if (members?.has(endpointId) !== true || inserts.vouches(endpointId, hash)) return
      index.remove(endpointId, hash)
    },
  })
  // What scoring learns about a request that does not change while it waits: kept for as long as
  // the request lives, so canTake and pick of one request share it, and so do the admission
  // queue's re-checks of every request it holds (up to `maxScan` of them each time). Without it
  // each re-check rehashed and re-matched the whole queue.
  const memos = new WeakMap<LlmRequest, RequestMemo>()
  // The running characters-per-token ratio of every prompt placed, whatever its model.
  let runningCharsPerToken: number | undefined
  // Index capacity is KV tokens in characters: sized with the running ratio, so one JSON or CJK
  // prompt (far fewer characters a token than prose) does not shrink the index and evict blocks
  // the engine still holds. One ratio for all models, since models with different ratios (an
  // adapter for SQL, one for prose) share an endpoint's index: a ratio each would resize it back
  // and forth, evicting at every shrink.
  const smoothedCharsPerToken = (charsPerToken: number): number => {
    const before = runningCharsPerToken
    runningCharsPerToken =
      before === undefined
        ? charsPerToken
        : before + CHARS_PER_TOKEN_SMOOTHING * (charsPerToken - before)
    return runningCharsPerToken
  }

  const memoOf = (llm: LlmRequest): RequestMemo => {
    const known = memos.get(llm)
    if (known) return known
    const fullChars = llm.promptText.length - (llm.promptText.length % options.blockChars)
    const all = hashPromptBlocks(
      llm.promptText.slice(0, fullChars),
      llm.servedModel,
      options.blockChars,
      options.maxPrefixBlocks,
    )
    const memo: RequestMemo = {
      hashes: all.length >= options.minAffinityBlocks ? all : [],
      sessionKey:
        options.sessionAffinity && llm.sessionKey !== undefined
          ? hashText53(`${llm.servedModel}\u0000${llm.routeKey}\u0000${llm.sessionKey}`)
          : undefined,
      predictedOutput:
        deps.predictedOutput?.(llm) ?? Math.min(llm.maxTokens ?? 256, 256) * (llm.sequences ?? 1),
      matched: undefined,
      placed: undefined,
    }
    memos.set(llm, memo)
    return memo
  }

  // A small number per endpoint, so a memo keeps its matches in arrays, not in maps keyed by id.
  // A slot given back is reused: a memo's entry there holds another endpoint's version, which the
  // new one's never equals (versions count the index's changes, and 0, none yet, means no match).
  const slotOf = new Map<string, number>()
  const freeSlots: number[] = []
  const slotFor = (endpointId: string): number => {
    let slot = slotOf.get(endpointId)
    if (slot === undefined) {
      slot = freeSlots.pop() ?? slotOf.size
      slotOf.set(endpointId, slot)
    }
    return slot
  }
  // Reused by `matchEach`: the endpoints whose match is out of date, where they go, and their
  // new matches.
  const stale: string[] = []
  const staleAt: number[] = []
  const staleSlots: number[] = []
  const staleVersions: number[] = []
  const fresh: number[] = []

  const takeBack = (memo: RequestMemo): void => {
    if (memo.placed === undefined) return
    inserts.release(memo.placed)
    memo.placed = undefined
  }

  return {
    memoOf,
    knownMemo: (llm) => memos.get(llm),
    matchEach(memo, endpointIds, out) {
      out.length = endpointIds.length
      if (memo.hashes.length === 0) {
        out.fill(0)
        return
      }
      memo.matched ??= { versions: [], blocks: [] }
      const { versions, blocks } = memo.matched
      stale.length = 0
      staleAt.length = 0
      staleSlots.length = 0
      staleVersions.length = 0
      for (let k = 0; k < endpointIds.length; k++) {
        const endpointId = endpointIds[k]!
        const slot = slotFor(endpointId)
        const version = index.version(endpointId)
        if (versions[slot] === version) {
          out[k] = blocks[slot]!
          continue
        }
        stale.push(endpointId)
        staleAt.push(k)
        staleSlots.push(slot)
        staleVersions.push(version)
      }
      if (stale.length === 0) return
      index.matchedBlocksEach(stale, memo.hashes, fresh)
      for (let j = 0; j < stale.length; j++) {
        versions[staleSlots[j]!] = staleVersions[j]!
        blocks[staleSlots[j]!] = fresh[j]!
        out[staleAt[j]!] = fresh[j]!
      }
    },
    place(memo, endpointId, matchedBlocks, capacityTokens, charsPerToken) {
      // The index caps it: a bogus KV size must not grow the router's memory. At least one
      // block, as the index keeps: other routers drop an announcement sized at none.
      const capacityBlocks = Math.max(
        1,
        Math.floor((capacityTokens * smoothedCharsPerToken(charsPerToken)) / options.blockChars),
      )
      index.add(endpointId, memo.hashes, capacityBlocks)
      peers?.announceAdded(endpointId, memo.hashes, capacityBlocks)
      memo.placed = inserts.claim(endpointId, memo.hashes, matchedBlocks)
    },
    takeBack,
    retainOnly(ids, forget) {
      members = new Set(ids)
      const keep = withoutIds(ids, forget)
      index.retainOnly(keep)
      inserts.retainOnly(keep)
      for (const [endpointId, slot] of slotOf) {
        if (ids.has(endpointId)) continue
        slotOf.delete(endpointId)
        freeSlots.push(slot)
      }
    },
    close() {
      stopListening?.()
    },
  }
}

/** `ids` less those in `forget`. */
export function withoutIds(
  ids: ReadonlySet<string>,
  forget: ReadonlySet<string> | undefined,
): ReadonlySet<string> {
  if (forget === undefined || forget.size === 0) return ids
  const kept = new Set(ids)
  for (const id of forget) kept.delete(id)
  return kept
}
