// The check every target passes before any load: each workload's request answers 200 with the
// upstream's answer, byte for byte when it is not streamed, and with every event of the stream in
// order when it is. A target that passes does the whole round trip the load will measure.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Server } from '../proxy/servers.ts'
import type { Pinned } from '../proxy/system.ts'
import { completionJson, completionSse, withUsage } from './answers.ts'
import { CHAT_PATH } from './configs.ts'
import type { Workload } from './workloads.ts'

export interface ProbeRequest {
  readonly workload: Workload
  readonly headers: Readonly<Record<string, string>>
}

interface Answer {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

async function post(url: string, request: ProbeRequest): Promise<Answer | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: request.headers,
      body: request.workload.body,
      signal: AbortSignal.timeout(5000),
    })
    return {
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      body: await res.text(),
    }
  } catch {
    return undefined
  }
}

/** The upstream's answer to a workload, as it comes back through a gateway. */
export function expectedAnswer(workload: Workload): string {
  const answer = workload.streamed ? completionSse() : completionJson()
  return withUsage(answer, Buffer.byteLength(workload.body))
}

/** The events of `expected` missing from `body`, or found out of order. */
function missingEvents(body: string, expected: string): string[] {
  const missing: string[] = []
  let from = 0
  for (const event of expected.split('\n\n').filter((e) => e !== '')) {
    const at = body.indexOf(event, from)
    if (at < 0) missing.push(event)
    else from = at + event.length
  }
  return missing
}

function wrongAnswer(request: ProbeRequest, answer: Answer): string | undefined {
  const { workload } = request
  const expected = expectedAnswer(workload)
  const shown = JSON.stringify(answer.body.slice(0, 300))
  if (answer.status !== 200) return `answered ${answer.status} ${shown}`
  if (!workload.streamed) {
    return answer.body === expected
      ? undefined
      : `answered 200 but not the upstream's body: ${shown}`
  }
  if (!answer.contentType.startsWith('text/event-stream')) {
    return `answered 200 as ${answer.contentType || 'no content-type'}, not text/event-stream`
  }
  const missing = missingEvents(answer.body, expected)
  if (missing.length === 0) return undefined
  return `streamed 200 without ${missing.length} of the upstream's events, first ${JSON.stringify(missing[0])}`
}

/** What the probe reads of a server: where it listens, and whether its process is still up. */
export type ProbedServer = Pick<Server, 'port'> & { readonly proc: Pick<Pinned, 'exited' | 'pid'> }

/**
 * A probe posting every request in turn to the target's chat path. The first is repeated until
 * the target answers at all (it may still be starting), for at most `startMs`.
 */
export function answersEveryRequest(requests: readonly ProbeRequest[], startMs = 15_000) {
  return async (server: ProbedServer): Promise<string | undefined> => {
    const url = `http://127.0.0.1:${server.port}${CHAT_PATH}`
    const deadline = Date.now() + startMs
    for (const request of requests) {
      let answer = await post(url, request)
      while (answer === undefined && Date.now() < deadline && !server.proc.exited) {
        await sleep(200)
        answer = await post(url, request)
      }
      const what = `POST ${CHAT_PATH} (${request.workload.name})`
      if (server.proc.exited) return `${what}: the process (pid ${server.proc.pid}) exited`
      if (answer === undefined) return `${what}: no answer within ${startMs / 1000} s`
      const wrong = wrongAnswer(request, answer)
      if (wrong !== undefined) return `${what} ${wrong}`
    }
    return undefined
  }
}
