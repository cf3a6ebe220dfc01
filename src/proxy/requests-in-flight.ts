import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestHandler } from '../util/http-server.ts'

/**
 * The requests in flight, by when they began: `drained()` settles once every request begun
 * before it was asked has ended. A reload asks, to know when nothing still runs on what it
 * removed (a route, an upstream whose connection pool it keeps).
 */
export interface RequestsInFlight {
  /** Counts a request that begins now, known by `request` (its IncomingMessage). */
  begin(request: object): void
  /** Ends a request `begin` counted; one it never counted is ignored. */
  end(request: object): void
  /** Settles once every request begun before this call has ended: at once if none is left. */
  drained(): Promise<void>
}

export function createRequestsInFlight(): RequestsInFlight {
  // Each `drained()` starts a new generation; a request belongs to the one it began in.
  let generation = 0
  const generationOf = new WeakMap<object, number>()
  const countByGeneration = new Map<number, number>()
  const waiters: Array<{ readonly generation: number; readonly resolve: () => void }> = []
  const isDrainedUpTo = (upTo: number): boolean => {
    for (const g of countByGeneration.keys()) if (g <= upTo) return false
    return true
  }
  return {
    begin(request) {
      generationOf.set(request, generation)
      countByGeneration.set(generation, (countByGeneration.get(generation) ?? 0) + 1)
    },
    end(request) {
      const g = generationOf.get(request)
      if (g === undefined) return
      generationOf.delete(request)
      const left = countByGeneration.get(g)! - 1
      if (left > 0) return void countByGeneration.set(g, left)
      countByGeneration.delete(g)
      for (let i = waiters.length - 1; i >= 0; i--) {
        const waiter = waiters[i]!
        if (!isDrainedUpTo(waiter.generation)) continue
        waiters.splice(i, 1)
        waiter.resolve()
      }
    },
    drained() {
      const upTo = generation++
      if (isDrainedUpTo(upTo)) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ generation: upTo, resolve }))
    },
  }
}

/** `handler`, counting each request it takes in `inFlight` as it begins (`end` is the caller's). */
export function countedInFlight(
  inFlight: RequestsInFlight,
  handler: RequestHandler,
): RequestHandler {
  const counted = (req: IncomingMessage, res: ServerResponse) => {
    inFlight.begin(req)
    handler(req, res)
  }
  const { checkContinue, refused } = handler
  // The server's refusals never begin: there is no request to end.
  if (checkContinue === undefined) return Object.assign(counted, { refused })
  return Object.assign(counted, {
    refused,
    checkContinue: (req: IncomingMessage, res: ServerResponse) => {
      inFlight.begin(req)
      checkContinue(req, res)
    },
  })
}
