import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Agent, request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { parseConfigObject } from '../../src/config/load.ts'
import { H100_LLAMA3_8B } from '../../src/sim/profiles.ts'
import { createScaledClock } from '../../src/sim/scaled-clock.ts'
import { warmUpSim } from '../../src/sim/warm-up.ts'
import { createSeededRandom, type Random, randomInt } from '../../src/util/random.ts'
import { adminMetrics, type RunningAya, startAya } from '../helpers/aya.ts'
import {
  CHAOS_FAULT_HEADER,
  type ChaosDoor,
  type ChaosFault,
  startChaosDoors,
} from '../helpers/chaos-door.ts'

/**
 * A soak of the LLM data path under chaos: a few hundred mixed requests (OpenAI chat and
 * completions, Anthropic messages; streamed or not; some in conversations, half of those bound by
 * a sticky header; some sheddable batch work) through the `aya` policy with admission and prefill
 * pacing, while clients go away at every stage (mid-body, gzipped and gone, while queued or held,
 * right after the first token, mid-stream, pipelined and gone), engines fail every way a door in
 * front of them can make them (500, 503, reset, silence before the head, after it, mid-stream,
 * reset mid-stream), reloads change the policy's options and the admission block, turn pacing off
 * and on, remove an endpoint with requests on it and bring it back, and an engine restarts. Once
 * everything has settled, the router's accounting must be back at idle: every request it counted
 * was uncounted exactly once. A leak would make an endpoint look busier for the rest of the
 * gateway's life, until it routed nothing there.
 *
 * Seeded: SOAK_SEED, SOAK_REQUESTS and SOAK_CONCURRENCY run it longer or otherwise, to hunt.
 */

const SEED = Number(process.env.SOAK_SEED ?? 20_240_611)
const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 300)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 20)

/** Counts and sizes that must read exactly 0 once nothing is in flight. */
const IDLE_GAUGES = [
  'aya_endpoint_inflight_requests',
  'aya_endpoint_pending_prefill_tokens',
  'aya_endpoint_kv_tokens',
  'aya_endpoint_pacer_held_prompts',
  'aya_endpoint_pacer_sent_prefill_tokens',
  'aya_admission_queue_depth',
  'aya_admission_queue_bytes',
]

type Api = 'chat' | 'completions' | 'messages'
type ClientAbort =
  | 'during-body'
  | 'early'
  | 'first-token'
  | 'mid-stream'
  | 'gzip-hang-up'
  | 'pipelined-hang-up'

interface SoakRequest {
  readonly api: Api
  readonly stream: boolean
  readonly body: string
  readonly headers: Record<string, string>
  readonly abort: ClientAbort | undefined
  /** When an `early` abort comes, after the request was sent, ms. */
  readonly abortAfterMs: number
}

interface SoakOutcome {
  readonly status: number | undefined
  readonly aborted: boolean
}

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'kappa', 'sigma', 'omega', 'theta', 'zeta']
const wordsOf = (random: Random, count: number): string => {
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push(WORDS[randomInt(random, WORDS.length)]!)
  return out.join(' ')
}

const FAULTS: readonly ChaosFault[] = [
  'status-500',
  'status-503',
  'reset',
  'hang',
  'reset-mid-response',
  'stall-after-head',
  'stall-mid-response',
]

/** The i-th request of the soak, drawn from `random`. */
function soakRequest(random: Random, sessions: readonly string[]): SoakRequest {
  const pick = random()
  const api: Api = pick < 0.5 ? 'chat' : pick < 0.7 ? 'completions' : 'messages'
  const stream = random() < 0.5
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  let prompt: string
  if (random() < 0.4) {
    // A conversation: its document again, and a new turn.
    const session = randomInt(random, sessions.length)
    headers['x-session-id'] = `conversation-${session}`
    // Half the conversations are bound to their endpoint, as a sticky header binds them.
    if (session % 2 === 0) headers['x-sticky'] = `conversation-${session}`
    prompt = `${sessions[session]} ${wordsOf(random, 20 + randomInt(random, 200))}`
  } else {
    prompt = `${random()} ${wordsOf(random, 50 + randomInt(random, 3000))}`
  }
  if (random() < 0.25) headers['x-priority'] = 'batch'
  const maxTokens = 8 + randomInt(random, 40)
  const action = random()
  let abort: ClientAbort | undefined
  if (action < 0.04) abort = 'during-body'
  else if (action < 0.06) abort = 'gzip-hang-up'
  else if (action < 0.08) abort = 'pipelined-hang-up'
  else if (action < 0.14) abort = 'early'
  else if (action < 0.2) abort = stream ? 'first-token' : 'early'
  else if (action < 0.26) abort = stream ? 'mid-stream' : 'early'
  else if (action < 0.42) headers[CHAOS_FAULT_HEADER] = FAULTS[randomInt(random, FAULTS.length)]!
  if (api === 'messages') headers['anthropic-version'] = '2023-06-01'
  const json =
    api === 'completions'
      ? { model: 'llama', prompt, max_tokens: maxTokens, stream }
      : {
          model: 'llama',
          messages: [{ role: 'user', content: prompt }],
          max_tokens: maxTokens,
          stream,
        }
  return {
    api,
    stream,
    body: JSON.stringify(json),
    headers,
    abort,
    abortAfterMs: randomInt(random, 300),
  }
}

const PATHS: Record<Api, string> = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  messages: '/v1/messages',
}

/** A streamed chunk with generated text in it, in any of the three APIs. */
const FIRST_TOKEN = /"(content|text)":"[^"]|content_block_delta/

/** Sends one request as a client that may go away at the point it was drawn to. */
function send(url: string, agent: Agent, spec: SoakRequest): Promise<SoakOutcome> {
  if (spec.abort === 'gzip-hang-up' || spec.abort === 'pipelined-hang-up') return sendRaw(url, spec)
  return new Promise((resolve) => {
    const { port } = new URL(url)
    const body = Buffer.from(spec.body)
    let status: number | undefined
    let aborted = false
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ status, aborted })
    }
    const abortNow = () => {
      aborted = true
      req.destroy()
      settle()
    }
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: PATHS[spec.api],
        agent: spec.abort === undefined ? agent : false,
        headers: { ...spec.headers, 'content-length': String(body.length) },
      },
      (res) => {
        status = res.statusCode
        let chunks = 0
        res.on('data', (chunk: Buffer) => {
          chunks++
          if (spec.abort === 'first-token' && FIRST_TOKEN.test(chunk.toString())) abortNow()
          else if (spec.abort === 'mid-stream' && chunks >= 3) abortNow()
        })
        res.on('end', settle)
        res.on('close', settle)
        res.on('error', settle)
      },
    )
    req.on('error', settle)
    req.on('close', () => {
      if (status === undefined) settle()
    })
    let timer: NodeJS.Timeout | undefined
    if (spec.abort === 'during-body') {
      // Half the body, then gone: Aya is still reading it.
      req.write(body.subarray(0, body.length >> 1))
      timer = setTimeout(abortNow, spec.abortAfterMs / 10)
      return
    }
    req.end(body)
    if (spec.abort === 'early') timer = setTimeout(abortNow, spec.abortAfterMs)
  })
}

/**
 * The clients no HTTP library would be: one that sends a gzipped body and hangs up at once (Aya
 * inflates it off the event loop, and sees the hang-up only after), and one that pipelines two
 * requests on one connection and hangs up once the first answer begins (Node emits no `close`
 * for the second's response, queued behind the first).
 */
async function sendRaw(url: string, spec: SoakRequest): Promise<SoakOutcome> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.on('error', () => {})
  const connected = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true))
    socket.once('close', () => resolve(false))
  })
  if (!connected) return { status: undefined, aborted: true }
  const head = (body: Buffer, extra: string) =>
    `POST ${PATHS[spec.api]} HTTP/1.1\r\nhost: aya\r\n${Object.entries(spec.headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('')}${extra}content-length: ${body.length}\r\n\r\n`
  if (spec.abort === 'gzip-hang-up') {
    const body = gzipSync(spec.body)
    socket.end(Buffer.concat([Buffer.from(head(body, 'content-encoding: gzip\r\n')), body]))
    socket.destroy()
    return { status: undefined, aborted: true }
  }
  const body = Buffer.from(spec.body)
  const one = Buffer.concat([Buffer.from(head(body, '')), body])
  socket.write(Buffer.concat([one, one]))
  await Promise.race([once(socket, 'data'), once(socket, 'close')])
  socket.destroy()
  return { status: undefined, aborted: true }
}

/** Every sample of the idle gauges that is not 0, as its lines. */
async function busySamples(aya: RunningAya): Promise<string[]> {
  const text = await adminMetrics(aya)
  return text
    .split('\n')
    .filter((line) => IDLE_GAUGES.some((name) => line.startsWith(`${name}{`)))
    .filter((line) => Number(line.slice(line.lastIndexOf(' ') + 1)) !== 0)
}

const configFor = (
  doors: readonly ChaosDoor[],
  policyOptions: Record<string, unknown>,
  admission: Record<string, unknown> = {},
) => ({
  listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
  admin: { address: '127.0.0.1', port: 0 },
  log: { access: false, level: 'error' },
  routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
  models: { llama: { deployments: [{ upstream: 'fleet', model: H100_LLAMA3_8B.modelName }] } },
  upstreams: {
    fleet: {
      policy: 'aya',
      policyOptions,
      endpoints: doors.map((door) => ({ url: door.url })),
      engineMetrics: { scrapeIntervalMs: 100 },
      sticky: { header: 'x-sticky' },
      timeouts: { connectMs: 300, firstByteMs: 800, completionMs: 1200, idleMs: 600 },
      admission: { ttftSloMs: 60, maxWaitMs: 1500, shedSheddable: true, ...admission },
    },
  },
})

describe('the LLM data path under chaos', () => {
  test('returns every accounting gauge to idle once the requests settle, and closes promptly', async (t) => {
    warmUpSim(H100_LLAMA3_8B)
    // What keeps the process alive before anything starts: the test runner's pipes.
    const resourcesBefore = process.getActiveResourcesInfo().sort()
    const doors = await startChaosDoors(t, {
      profile: H100_LLAMA3_8B,
      count: 3,
      clock: createScaledClock({ speedup: 8 }),
    })
    const random = createSeededRandom(SEED)
    const aya = await startAya(configFor(doors, {}), {}, { random: createSeededRandom(SEED + 1) })
    let isClosed = false
    t.after(() => (isClosed ? undefined : aya.close()))
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
    t.after(() => agent.destroy())

    const sessions = Array.from({ length: 6 }, () => wordsOf(random, 600 + randomInt(random, 1500)))
    const requests = Array.from({ length: REQUESTS }, () => soakRequest(random, sessions))
    const reload = (
      live: readonly ChaosDoor[],
      policyOptions: Record<string, unknown>,
      admission: Record<string, unknown> = {},
    ) => aya.aya.reload(parseConfigObject(configFor(live, policyOptions, admission), {}))
    const tuned = { pacingLeadMs: 80, affinityCredit: 8 }
    // What happens as the soak reaches each request: the faults no header can ask for.
    const events = new Map<number, () => Promise<void> | void>([
      // New options: a new picker and pacer (the old one lets what it holds go), and a new
      // admission queue that succeeds the old one while requests wait in it.
      [
        Math.round(REQUESTS * 0.2),
        () => reload(doors, tuned, { ttftSloMs: 90, holdForUrgent: true }),
      ],
      // Pacing off, with prompts held: they go, and the lanes they leave are no one's.
      [Math.round(REQUESTS * 0.35), () => reload(doors, { ...tuned, pacing: false })],
      // The third endpoint leaves with requests on it, and pacing comes back.
      [Math.round(REQUESTS * 0.5), () => reload(doors.slice(0, 2), tuned)],
      // The second engine restarts: refused connects are retried elsewhere, its streams cut.
      [Math.round(REQUESTS * 0.62), () => doors[1]!.restart(150)],
      // The third endpoint is back: a new endpoint under its old id.
      [Math.round(REQUESTS * 0.8), () => reload(doors, tuned)],
    ])

    const outcomes: SoakOutcome[] = []
    const pending: Array<Promise<void>> = []
    let next = 0
    const worker = async () => {
      while (next < requests.length) {
        const index = next++
        const event = events.get(index)
        if (event) pending.push(Promise.resolve(event()))
        outcomes[index] = await send(aya.url, agent, requests[index]!)
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    await Promise.all(pending)

    // The soak did what it says: requests were answered, clients left, every kind of upstream
    // failure was met, some were retried and some waited in admission.
    const ok = outcomes.filter((o) => o.status === 200).length
    assert.ok(ok >= REQUESTS / 3, `only ${ok} of ${REQUESTS} answered 200 (seed ${SEED})`)
    const seen = await adminMetrics(aya)
    for (const counted of [
      'aya_errors_total{code="LB_ERR_CLIENT_ABORTED"',
      'aya_errors_total{code="LB_ERR_UPSTREAM_RESET"',
      'aya_errors_total{code="LB_ERR_FIRST_BYTE_TIMEOUT"',
      'aya_errors_total{code="LB_ERR_IDLE_TIMEOUT"',
      'aya_upstream_retries_total{',
      'aya_scheduler_decisions_total{policy="aya",branch="queue"}',
    ]) {
      assert.ok(sumOf(seen, counted) > 0, `never counted: ${counted} (seed ${SEED})`)
    }

    // Every request has settled on the client's side; Aya's side of those the clients left may
    // take a moment longer (an upstream aborted, a lane's last release).
    const busy = await busyAfterSettling(aya)
    assert.deepEqual(busy, [], `accounting left busy (seed ${SEED})`)
    const text = await adminMetrics(aya)
    for (const door of doors) {
      const id = new URL(door.url).host
      assert.ok(
        text.includes(`aya_endpoint_inflight_requests{upstream="fleet",endpoint="${id}"} 0`),
        `${id} is counted, idle`,
      )
    }

    // Idle, and believed idle: every endpoint takes work again.
    const after = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        send(aya.url, agent, {
          api: 'chat',
          stream: i % 2 === 0,
          body: JSON.stringify({
            model: 'llama',
            max_tokens: 4,
            stream: i % 2 === 0,
            messages: [{ role: 'user', content: `${i} ${wordsOf(random, 100)}` }],
          }),
          headers: { 'content-type': 'application/json' },
          abort: undefined,
          abortAfterMs: 0,
        }),
      ),
    )
    assert.deepEqual(
      after.map((o) => o.status),
      after.map(() => 200),
    )
    assert.deepEqual(await busySamples(aya), [])

    // Nothing in flight is left for a drain to wait on, and nothing Aya started outlives it: once
    // it and the engines are closed, no timer or socket keeps the process alive.
    agent.destroy()
    const drainMs = 60_000
    const closed = await Promise.race([
      aya.aya.close(drainMs).then(() => true),
      new Promise<false>((resolve) => setTimeout(resolve, drainMs / 2, false).unref()),
    ])
    assert.ok(closed, 'the close waited on something in flight')
    isClosed = true
    await Promise.all(doors.map((door) => door.close()))
    assert.deepEqual(await resourcesAfterSettling(resourcesBefore), resourcesBefore)
  })
})

/** The sum of the samples whose line starts with `prefix`. */
function sumOf(text: string, prefix: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** The busy samples once they are none, or as they still are after a few seconds. */
async function busyAfterSettling(aya: RunningAya): Promise<string[]> {
  const start = performance.now()
  for (;;) {
    const busy = await busySamples(aya)
    if (busy.length === 0 || performance.now() - start > 5_000) return busy
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The process's active resources once they are back to `before`, or as they are after a while. */
async function resourcesAfterSettling(before: readonly string[]): Promise<string[]> {
  const start = performance.now()
  for (;;) {
    const now = process.getActiveResourcesInfo().sort()
    if (now.join() === before.join() || performance.now() - start > 5_000) return now
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
