import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, type TestContext, test } from 'node:test'
import { request } from 'undici'
import {
  adminMetrics,
  loggedDecisions,
  metricSample,
  type RunningAya,
  startAya,
  startSimGateway,
} from '../helpers/aya.ts'
import { LOCAL_LISTENERS_YAML, spawnCli, writeTempFile } from '../helpers/cli.ts'
import { eventually } from '../helpers/eventually.ts'

/**
 * One simulated A100 (prefill ~12k tokens/s) at real speed: a prompt of `words` words is that many
 * tokens to the engine, so 6,000 words hold it for ~0.5 s and 1,500 words for ~125 ms. Under a
 * 50-ms TTFT SLO nothing else starts while a prompt is prefilling, so requests that queue behind
 * it are let go one at a time, and finish in the order they were let go.
 */
const SIM = { replicas: 1, profile: 'a100-llama3-8b', speedup: 1 }

const fleet = (admission: Record<string, unknown>) => ({
  policy: 'aya',
  sim: SIM,
  admission: { ttftSloMs: 50, maxWaitMs: 20_000, ...admission },
})

/** One chat request, named so its answer can be told apart. */
interface Ask {
  readonly name: string
  readonly words: number
  readonly headers?: Readonly<Record<string, string>>
}

interface Answer {
  readonly name: string
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

/** The chat body of `ask`: the name leads, so prompts of one size differ from their first block. */
const chatBody = (ask: Ask): string =>
  JSON.stringify({
    model: 'llama',
    max_tokens: 4,
    messages: [{ role: 'user', content: `${ask.name} ${'lorem '.repeat(ask.words)}` }],
  })

async function chat(url: string, ask: Ask): Promise<Answer> {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...ask.headers },
    body: chatBody(ask),
  })
  return {
    name: ask.name,
    status: res.statusCode,
    headers: res.headers,
    text: await res.body.text(),
  }
}

/**
 * Sends each request once the one before it has reached admission: placed or queued (a scheduler
 * decision is logged; Aya must log at debug level) or answered (refused at the door). Resolves
 * with every answer, in the order sent, and the names in the order their answers finished.
 */
async function sendInTurn(
  aya: RunningAya,
  asks: readonly Ask[],
): Promise<{ answers: Answer[]; finished: string[] }> {
  const finished: string[] = []
  const answers: Promise<Answer>[] = []
  for (const ask of asks) {
    const decided = loggedDecisions(aya).length
    let answered = false
    const answer = chat(aya.url, ask).then((a) => {
      finished.push(a.name)
      return a
    })
    const settle = () => {
      answered = true
    }
    answer.then(settle, settle)
    answers.push(answer)
    await eventually(
      () => answered || loggedDecisions(aya).length > decided,
      `${ask.name} reached admission`,
    )
  }
  return { answers: await Promise.all(answers), finished }
}

/** Asserts a 503 with this Aya code in OpenAI's error shape, with a Retry-After in [1, 60] s. */
function assertRefused(answer: Answer, code: string): void {
  assert.equal(answer.status, 503, `${answer.name}: ${answer.text}`)
  assert.equal(answer.headers['x-aya-error-code'], code, answer.name)
  const retryAfter = Number(answer.headers['retry-after'])
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${retryAfter}`)
  const body = JSON.parse(answer.text) as { error: Record<string, unknown> }
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'])
  assert.equal(body.error.type, 'server_error')
  assert.equal(body.error.code, code)
  assert.equal(body.error.param, null)
  assert.equal(typeof body.error.message, 'string')
}

const assertServed = (answer: Answer): void =>
  assert.equal(answer.status, 200, `${answer.name}: ${answer.text}`)

const DEBUG = { log: { level: 'debug' } } as const

describe('admission queue policies over sockets, on one simulated engine', () => {
  test("refuses a request whose body would take the queue past maxPendingBytes with 503 LB_ERR_QUEUE_FULL in OpenAI's shape, and serves the queued ones; a larger bound queues the same traffic", async (t) => {
    // The first prompt holds the engine ~0.5 s; three of 1,500 words queue behind it.
    const asks: readonly Ask[] = [
      { name: 'first', words: 6000 },
      { name: 'q1', words: 1500 },
      { name: 'q2', words: 1500 },
      { name: 'q3', words: 1500 },
    ]
    const queuedBytes = Buffer.byteLength(chatBody(asks[1]!))
    // Room for two queued bodies, not three.
    const tight = await startSimGateway(
      t,
      fleet({ maxPendingBytes: Math.floor(2.5 * queuedBytes) }),
      DEBUG,
    )
    const { answers } = await sendInTurn(tight, asks)
    const [first, q1, q2, q3] = answers
    assertServed(first!)
    assertServed(q1!)
    assertServed(q2!)
    assertRefused(q3!, 'LB_ERR_QUEUE_FULL')
    const metrics = await adminMetrics(tight)
    assert.equal(
      metricSample(
        metrics,
        'aya_admission_rejected_total',
        'upstream="fleet",reason="LB_ERR_QUEUE_FULL"',
      ),
      1,
    )

    const roomy = await startSimGateway(t, fleet({ maxPendingBytes: 4 * queuedBytes }), DEBUG)
    for (const answer of (await sendInTurn(roomy, asks)).answers) assertServed(answer)
  })

  /** First, a long prompt, then three short ones, under shortest-predicted-first: finish order. */
  async function agingOrder(t: TestContext, aging: Record<string, unknown>): Promise<string[]> {
    const aya = await startSimGateway(
      t,
      fleet({ order: 'shortest-predicted-first', ...aging }),
      DEBUG,
    )
    const { answers, finished } = await sendInTurn(aya, [
      { name: 'first', words: 6000 },
      { name: 'long', words: 6000 },
      { name: 's1', words: 1500 },
      { name: 's2', words: 1500 },
      { name: 's3', words: 1500 },
    ])
    for (const answer of answers) assertServed(answer)
    return finished
  }

  test('serves a long prompt that has waited past the aging bound before shorter ones that queued after it; without the bound they overtake it', async (t) => {
    // The long prompt queues ~0.5 s behind the first, past a 150-ms bound: it is urgent, and the
    // earliest to be, when the engine frees.
    const bypass = await agingOrder(t, { maxBypassMs: 150 })
    assert.deepEqual(bypass, ['first', 'long', 's1', 's2', 's3'])
    // The same bound reached as a share of the time to the deadline (1 % of 20 s is 200 ms).
    const fraction = await agingOrder(t, { maxBypassMs: 60_000, agingFraction: 0.01 })
    assert.deepEqual(fraction, ['first', 'long', 's1', 's2', 's3'])
    // With neither bound reached within the test, every shorter prompt passes it.
    const none = await agingOrder(t, { maxBypassMs: 60_000, agingFraction: 1 })
    assert.deepEqual(none, ['first', 's1', 's2', 's3', 'long'])
  })

  /**
   * Tenant `a` sends a prompt that holds the engine, then a backlog of five; then `lone` sends
   * one, as tenant `lone` (its `x-tenant` header). Finish order.
   */
  async function tenantOrder(t: TestContext, lone: string): Promise<string[]> {
    const aya = await startSimGateway(
      t,
      fleet({ order: 'fifo', tenantKey: { header: 'x-tenant' } }),
      DEBUG,
    )
    const a = { 'x-tenant': 'a' }
    const { answers, finished } = await sendInTurn(aya, [
      { name: 'first', words: 6000, headers: a },
      ...[1, 2, 3, 4, 5].map((i) => ({ name: `a${i}`, words: 1500, headers: a })),
      { name: 'lone', words: 1500, headers: { 'x-tenant': lone } },
    ])
    for (const answer of answers) assertServed(answer)
    return finished
  }

  test("serves a second tenant's one request within the first two let go from the queue, not behind the backlog another tenant queued first", async (t) => {
    // Fair share: both tenants backlogged with equal counters, the first backlogged goes first,
    // then the other (its counter is now the lower).
    const fair = await tenantOrder(t, 'b')
    assert.ok(fair.indexOf('lone') <= 2, `${fair}`)
    // The same request sent as tenant a waits behind all of a's backlog (fifo within a tenant).
    const same = await tenantOrder(t, 'a')
    assert.equal(same.indexOf('lone'), same.length - 1, `${same}`)
  })

  /** Aya on one simulated engine with this `priorities.sheddable` and admission block. */
  async function startSheddable(
    t: TestContext,
    sheddable: 'negative' | 'never',
    admission: Record<string, unknown>,
  ): Promise<RunningAya> {
    const aya = await startAya({
      ...DEBUG,
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: {
        llama: { deployments: [{ upstream: 'fleet', model: 'meta-llama/Llama-3.1-8B-Instruct' }] },
      },
      upstreams: { fleet: fleet(admission) },
      priorities: { sheddable },
    })
    t.after(() => aya.close())
    return aya
  }

  const BATCH = { 'x-priority': 'batch' }

  /** Two interactive prompts that saturate the engine, then two batch ones. */
  const saturatingBurst: readonly Ask[] = [
    { name: 'i1', words: 6000 },
    { name: 'i2', words: 6000 },
    { name: 'b1', words: 1500, headers: BATCH },
    { name: 'b2', words: 1500, headers: BATCH },
  ]

  test('queues batch work under saturation with sheddable: never, where sheddable: negative sheds it at once', async (t) => {
    const negative = await startSheddable(t, 'negative', { shedSheddable: true })
    const shed = await sendInTurn(negative, saturatingBurst)
    assert.deepEqual(
      shed.answers.map((a) => a.status),
      [200, 200, 503, 503],
    )
    for (const answer of shed.answers.slice(2)) assertRefused(answer, 'LB_ERR_SHED')

    const never = await startSheddable(t, 'never', { shedSheddable: true })
    const kept = await sendInTurn(never, saturatingBurst)
    for (const answer of kept.answers) assertServed(answer)
    // Still a lower band: served after the interactive work.
    assert.deepEqual(kept.finished, ['i1', 'i2', 'b1', 'b2'])
  })

  /** A prompt that holds the engine, two batch ones that fill a queue of two, then interactive. */
  const fullQueue: readonly Ask[] = [
    { name: 'first', words: 6000 },
    { name: 'b1', words: 1500, headers: BATCH },
    { name: 'b2', words: 1500, headers: BATCH },
    { name: 'interactive', words: 1500 },
  ]

  test('keeps queued batch work in a full queue with sheddable: never, where sheddable: negative evicts it for interactive work', async (t) => {
    const negative = await startSheddable(t, 'negative', { maxPending: 2 })
    const evicted = await sendInTurn(negative, fullQueue)
    const [, b1, b2, interactive] = evicted.answers
    // The newest batch request makes room, and the interactive one goes before the other.
    assertRefused(b2!, 'LB_ERR_SHED')
    assertServed(b1!)
    assertServed(interactive!)
    assert.deepEqual(
      evicted.finished.filter((name) => name !== 'b2'),
      ['first', 'interactive', 'b1'],
    )

    const never = await startSheddable(t, 'never', { maxPending: 2 })
    const kept = await sendInTurn(never, fullQueue)
    assertRefused(kept.answers[3]!, 'LB_ERR_QUEUE_FULL')
    for (const answer of kept.answers.slice(0, 3)) assertServed(answer)
  })
})

/**
 * The aya CLI started on a YAML file with one simulated A100 under admission (50-ms TTFT SLO,
 * sheddable work shed) and this `priorities:` block; its public and admin URLs.
 */
async function startCli(t: TestContext, priorities: string) {
  const file = await writeTempFile(
    'aya.yaml',
    `
${LOCAL_LISTENERS_YAML}routes:
  - match: { pathPrefix: /v1 }
    gateway: models
models:
  llama:
    deployments:
      - { upstream: fleet, model: meta-llama/Llama-3.1-8B-Instruct }
upstreams:
  fleet:
    policy: aya
    sim: { replicas: 1, profile: a100-llama3-8b, speedup: 1 }
    admission: { ttftSloMs: 50, maxWaitMs: 20000, shedSheddable: true }
${priorities}`,
  )
  const { child, output } = await spawnCli(['start', '--config', file], /admin on http:\S+/)
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  const port = (what: string) =>
    Number(new RegExp(`${what} on http://[\\d.]+:(\\d+)`).exec(output())![1])
  const url = `http://127.0.0.1:${port('listener public')}`
  const adminUrl = `http://127.0.0.1:${port('admin')}`
  const metrics = async () => (await request(`${adminUrl}/metrics`)).body.text()
  return { url, metrics }
}

describe('the priorities block of a YAML config, in the aya CLI', () => {
  test('reads x-priority as a class name or an integer: batch and -1 are class -1 and shed, an unknown name is the default class', async (t) => {
    const { url, metrics } = await startCli(
      t,
      `
priorities:
  header: x-priority
  classes: { interactive: 0, batch: -1 }
  default: interactive
  sheddable: negative
`,
    )
    const placed = async () =>
      metricSample(await metrics(), 'aya_scheduler_decisions_total', 'policy="aya",branch="cold"')

    // Saturate the engine: once the first prompt is placed, the next cannot start within 50 ms.
    const busy = chat(url, { name: 'busy', words: 6000 })
    busy.catch(() => {})
    await eventually(async () => (await placed()) === 1, 'the first prompt placed')

    const [named, numbered, clamped, zero, unknown] = await Promise.all([
      chat(url, { name: 'named', words: 1500, headers: { 'x-priority': 'batch' } }),
      chat(url, { name: 'numbered', words: 1500, headers: { 'x-priority': '-1' } }),
      chat(url, { name: 'clamped', words: 1500, headers: { 'x-priority': '-7' } }),
      chat(url, { name: 'zero', words: 1500, headers: { 'x-priority': '0' } }),
      chat(url, { name: 'unknown', words: 1500, headers: { 'x-priority': 'urgent' } }),
    ])
    // Class -1 (by name, by number, clamped up to the lowest class) is sheddable: refused at once.
    assertRefused(named!, 'LB_ERR_SHED')
    assertRefused(numbered!, 'LB_ERR_SHED')
    assertRefused(clamped!, 'LB_ERR_SHED')
    // Class 0 by number, and a name no class has (counted as absent, so the default class, not a
    // 400), are not sheddable: they wait behind the first prompt and are served.
    assertServed(zero!)
    assertServed(unknown!)
    assertServed(await busy)

    const text = await metrics()
    assert.equal(
      metricSample(text, 'aya_admission_rejected_total', 'upstream="fleet",reason="LB_ERR_SHED"'),
      3,
    )
    // Those two waited in the queue for the engine; the three of class -1 never queued.
    assert.equal(
      metricSample(text, 'aya_scheduler_decisions_total', 'policy="aya",branch="queue"'),
      2,
    )
    // One gauge per class of the block, by its priority.
    for (const priority of ['0', '-1']) {
      const labels = `upstream="fleet",priority="${priority}"`
      assert.equal(metricSample(text, 'aya_admission_queue_depth', labels), 0, labels)
      assert.notEqual(
        metricSample(text, 'aya_admission_class_predicted_wait_seconds', labels),
        undefined,
        labels,
      )
    }
  })
  test('reads a block of its own: its header, its classes and its default, not the built-in ones', async (t) => {
    const { url, metrics } = await startCli(
      t,
      `
priorities:
  header: x-class
  classes: { gold: 1, silver: 0, bronze: -1 }
  default: bronze
  sheddable: negative
`,
    )
    const placed = async () =>
      metricSample(await metrics(), 'aya_scheduler_decisions_total', 'policy="aya",branch="cold"')
    const busy = chat(url, { name: 'busy', words: 6000, headers: { 'x-class': 'gold' } })
    busy.catch(() => {})
    await eventually(async () => (await placed()) === 1, 'the first prompt placed')

    const [none, builtInHeader, gold, silver] = await Promise.all([
      chat(url, { name: 'none', words: 1500 }),
      chat(url, { name: 'built-in header', words: 1500, headers: { 'x-priority': 'interactive' } }),
      chat(url, { name: 'gold', words: 1500, headers: { 'x-class': 'gold' } }),
      chat(url, { name: 'silver', words: 1500, headers: { 'x-class': 'silver' } }),
    ])
    // The default is bronze (-1): without x-class a request is sheddable, and x-priority is no
    // longer the header, so its "interactive" is ignored too.
    assertRefused(none!, 'LB_ERR_SHED')
    assertRefused(builtInHeader!, 'LB_ERR_SHED')
    assertServed(gold!)
    assertServed(silver!)
    assertServed(await busy)
    const text = await metrics()
    for (const priority of ['1', '0', '-1']) {
      const labels = `upstream="fleet",priority="${priority}"`
      assert.equal(metricSample(text, 'aya_admission_queue_depth', labels), 0, labels)
    }
  })
})
