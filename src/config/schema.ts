import { METHODS } from 'node:http'
import { isIP } from 'node:net'
import { z } from 'zod'
import { HOP_BY_HOP } from '../proxy/headers.ts'
import { keySelectorSchema } from '../proxy/key-selector.ts'
import { MIN_STICKY_SECRET_CHARS } from '../proxy/sticky-cookie.ts'
import { prioritiesSchema } from '../resilience/priority-classes.ts'
import { redisConnectionOptions } from '../state/redis-url.ts'
import { MAX_TIMER_MS } from '../util/clock.ts'

/**
 * The one source of the Config type and every default. Units are in key names; durations are
 * integer milliseconds. Cross-field rules (references, duplicates, per-policy options) live in
 * `validate.ts` so that this file stays a plain description of the shape.
 */

const MIB = 1024 * 1024

export const positiveInt = (what = 'a positive integer') =>
  z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .positive({
      error: `expected ${what}`,
    })

const nonNegativeInt = z
  .number({ error: 'expected a non-negative integer' })
  .int({ error: 'expected a non-negative integer' })
  .nonnegative({ error: 'expected a non-negative integer' })

const port = z
  .number({ error: 'expected a port number (0-65535)' })
  .int({ error: 'expected a port number (0-65535)' })
  .min(0, { error: 'expected a port number (0-65535)' })
  .max(65535, { error: 'expected a port number (0-65535)' })

const nonEmptyString = (what: string) =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` })

/** RFC 9110 §5.6.2: what a header name or a method is made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

const headerName = z
  .string({ error: 'expected a header name' })
  .regex(TOKEN, { error: 'expected a header name' })

/**
 * Node's parser answers 400 to a method outside `METHODS` and to any in lower case, so a route
 * could never match one; a lower-case method here means its upper-case form (route-table.ts).
 * One check, so a bad method gets one message.
 */
const httpMethod = z
  .string({ error: 'expected an HTTP method' })
  .refine((method) => METHODS.includes(method.toUpperCase()), {
    error: (issue) =>
      typeof issue.input === 'string' && TOKEN.test(issue.input)
        ? 'expected a method Node accepts (node:http METHODS): it answers others with 400, so the route would never match'
        : "expected an HTTP method, a token of letters, digits and !#$%&'*+-.^_`|~",
  })

/**
 * No control characters (CR, LF, NUL...): they would split a header, and Node refuses them in one.
 * A header value may hold a tab; a Location's parts may not.
 */
function hasNoControlCharacters(value: string, allowTab = false): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if ((code < 0x20 && !(allowTab && code === 0x09)) || code === 0x7f) return false
  }
  return true
}

const headerValue = z
  .string({ error: 'expected a header value' })
  .refine((v) => hasNoControlCharacters(v, true), {
    error: 'header values must not contain control characters such as CR, LF or NUL',
  })

/**
 * Node fires a timer longer than MAX_TIMER_MS after 1 ms: a wait past it would spin, and a
 * timeout past it would fire at once (undici's too).
 */
const atMostTimer = { error: `expected at most ${MAX_TIMER_MS} milliseconds (about 24.8 days)` }
const timerMs = positiveInt('a positive integer of milliseconds').max(MAX_TIMER_MS, atMostTimer)

export const timeoutsSchema = z
  .object({
    connectMs: timerMs.default(2000),
    firstByteMs: timerMs.default(30_000),
    idleMs: timerMs.default(60_000),
    /**
     * The first-byte timeout of an LLM request that is not streamed: an engine sends its headers
     * only once the whole generation is done, which under load takes minutes (LiteLLM's default
     * request timeout is 10 minutes too).
     */
    completionMs: timerMs.default(600_000),
  })
  .strict()

const partialTimeoutsSchema = z
  .object({
    connectMs: timerMs.optional(),
    firstByteMs: timerMs.optional(),
    idleMs: timerMs.optional(),
    completionMs: timerMs.optional(),
  })
  .strict()

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/

/**
 * What a listener can bind: an IP literal (IPv6 without brackets, as `listen` takes it), or a
 * host name of valid syntax for the resolver (`localhost` among them). A last label of digits
 * alone is a mistyped IPv4 address, not a name.
 */
function isBindAddress(address: string): boolean {
  if (isIP(address) !== 0) return true
  const name = address.endsWith('.') ? address.slice(0, -1) : address
  if (name.length === 0 || name.length > 253) return false
  const labels = name.split('.')
  return labels.every((label) => HOST_LABEL.test(label)) && !/^\d+$/.test(labels.at(-1)!)
}

const bindAddress = z.string({ error: 'expected an address' }).refine(isBindAddress, {
  error: 'expected an IP address (IPv6 without brackets), localhost or a host name',
})

export const listenerSchema = z
  .object({
    name: nonEmptyString('a listener name'),
    address: bindAddress.default('127.0.0.1'),
    port,
    maxBodyBytes: positiveInt('a positive integer of bytes').default(16 * MIB),
    /** Overrides the top-level `trustedProxies` for this listener. */
    trustedProxies: z.array(z.string()).optional(),
  })
  .strict()

export const adminSchema = z
  .object({
    address: bindAddress.default('127.0.0.1'),
    port: port.default(9901),
  })
  .strict()

/**
 * Requests go to an endpoint's origin with their own (routed, rewritten) path: a path, query or
 * credentials in the URL would be silently dropped, so they are refused (`rewrite` sets a prefix).
 */
function isOriginOnly(url: string): boolean {
  const parsed = URL.parse(url)
  return (
    parsed !== null &&
    parsed.pathname === '/' &&
    parsed.search === '' &&
    parsed.hash === '' &&
    parsed.username === '' &&
    parsed.password === ''
  )
}

const endpointSchema = z
  .object({
    url: z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .refine(isOriginOnly, {
        error:
          'expected scheme://host:port alone: requests keep their own path (use a route rewrite for a prefix), and a query or credentials here would be dropped',
      })
      // Port 0 means "any free port" to a listener; nothing can be connected to there.
      .refine((url) => URL.parse(url)?.port !== '0', {
        error: 'expected a port from 1 to 65535: nothing can be connected to at port 0',
      }),
    weight: positiveInt().max(1000, { error: 'expected a weight of at most 1000' }).default(1),
    /** A stable identity for metrics and sticky cookies; defaults to host:port. */
    id: nonEmptyString('an endpoint id').optional(),
  })
  .strict()

const MAX_COOKIE_TTL_MS = 400 * 24 * 3_600_000

const stickySchema = z.union(
  [
    z
      .object({
        cookie: z
          .object({
            // Absent: `aya_sticky_<upstream>`, one cookie per group (defaultStickyCookieName).
            name: headerName.optional(),
            // Browsers keep a cookie 400 days at most (RFC 6265bis §5.6.2), and a far longer
            // expiry would not even read back: the binding would be re-made at every request.
            ttlMs: positiveInt('a positive integer of milliseconds')
              .max(MAX_COOKIE_TTL_MS, {
                error: `expected at most ${MAX_COOKIE_TTL_MS} milliseconds (400 days, the longest a browser keeps a cookie)`,
              })
              .default(3_600_000),
            // Empty means "generate one per instance"; a short key could be brute-forced offline.
            secret: z
              .string()
              .refine((v) => v === '' || v.length >= MIN_STICKY_SECRET_CHARS, {
                error: `expected a secret of at least ${MIN_STICKY_SECRET_CHARS} characters (or empty to generate one)`,
              })
              .optional(),
            secure: z.boolean().default(false),
          })
          .strict(),
      })
      .strict(),
    z
      .object({
        header: headerName,
        ttlMs: positiveInt('a positive integer of milliseconds').default(3_600_000),
      })
      .strict(),
  ],
  { error: 'expected { cookie: { name, ttlMs, secret } } or { header: <name> }' },
)

/** Late binding on the one admission queue: requests wait until the policy can place them. */
export const admissionSchema = z
  .object({
    /** A request is held while no endpoint is predicted to start it within this TTFT. */
    ttftSloMs: positiveInt('a positive integer of milliseconds').default(2000),
    maxPending: positiveInt().default(1024),
    maxPendingBytes: positiveInt('a positive integer of bytes').default(256 * MIB),
    /** Longest wait in the queue; past it the request gets 503 with Retry-After. */
    maxWaitMs: timerMs.default(30_000),
    order: z.enum(['fifo', 'shortest-predicted-first']).default('shortest-predicted-first'),
    /** Shortest-predicted-first: how long shorter requests may keep passing one. */
    maxBypassMs: nonNegativeInt.max(MAX_TIMER_MS, atMostTimer).default(5_000),
    /** Shortest-predicted-first: the share of its time to deadline after which a request goes first. */
    agingFraction: z.number().gt(0).max(1).default(0.5),
    /** Under saturation, refuse sheddable (negative-priority) work at once instead of queueing it. */
    shedSheddable: z.boolean().default(false),
    /**
     * Refuse at once (503 LB_ERR_DEADLINE with Retry-After) a request that the drain rate,
     * measured on recent admissions, says would wait well past `maxWaitMs` anyway
     * (docs/admission.md).
     */
    shedEarly: z.boolean().default(false),
    /**
     * The per-tenant bound: when the queue is full, a request from a tenant under its fair share
     * (an equal split of maxPending and of maxPendingBytes among the tenants queued) evicts the
     * newest requests of the tenant holding the most, from its priority or lower
     * (docs/admission.md).
     */
    fairShareEviction: z.boolean().default(true),
    /** While requests wait, how often placement is re-checked besides on completions. */
    recheckMs: timerMs.default(25),
    /** Whose fair share a request counts against. */
    tenantKey: keySelectorSchema.default({ apiKey: true }),
    /**
     * Hold an endpoint for an urgent request (waiting past its aging bound) that cannot go yet,
     * placing those behind it elsewhere, so a long prompt refused for KV room is not passed until
     * its deadline. Off by default: past the fleet's ceiling it costs the p90 (docs/benchmarks.md).
     */
    holdForUrgent: z.boolean().default(false),
    /**
     * Per priority class (a name from `priorities.classes`): its own TTFT SLO and longest wait,
     * so batch work can wait minutes for room while interactive work is held to seconds.
     */
    classes: z
      .record(
        nonEmptyString('a priority class name'),
        z
          .object({
            ttftSloMs: positiveInt('a positive integer of milliseconds').optional(),
            maxWaitMs: timerMs.optional(),
          })
          .strict(),
      )
      .default({}),
  })
  .strict()

/** A simulated vLLM fleet that Aya starts itself, in place of `endpoints`. */
export const simUpstreamSchema = z
  .object({
    replicas: positiveInt().max(64, { error: 'expected at most 64 replicas' }),
    profile: nonEmptyString('a sim profile such as h100-llama3-8b'),
    speedup: z.number({ error: 'expected a positive number' }).positive().default(1),
    seed: z.number().int().default(1),
    // The fleet waits this long (in engine time) on a timer: held to the bound of every other
    // timer value, past which a plain Node timer fires after 1 ms.
    startupMs: nonNegativeInt.max(MAX_TIMER_MS, atMostTimer).default(0),
  })
  .strict()

export const upstreamSchema = z
  .object({
    policy: z.string({ error: 'expected a policy name' }).default('least-request'),
    policyOptions: z.record(z.string(), z.unknown()).default({}),
    hashKey: keySelectorSchema.optional(),
    sticky: stickySchema.optional(),
    timeouts: timeoutsSchema.prefault({}),
    /** Most connections kept per endpoint. */
    maxConnectionsPerEndpoint: positiveInt().default(128),
    endpoints: z.array(endpointSchema).default([]),
    sim: simUpstreamSchema.optional(),
    admission: admissionSchema.optional(),
    /**
     * Scrape the endpoints' Prometheus `/metrics` (vLLM, SGLang) for policies that use them;
     * `false` never scrapes (a hosted API serves no engine metrics), and such policies then go
     * on router-side accounting alone.
     */
    engineMetrics: z
      .union(
        [
          z.literal(false),
          z
            .object({
              scrapeIntervalMs: timerMs.default(1000),
              /** Older snapshots count as unknown; default 3 × the interval. */
              staleAfterMs: timerMs.optional(),
            })
            .strict(),
        ],
        { error: 'expected false or { scrapeIntervalMs, staleAfterMs }' },
      )
      .optional(),
  })
  .strict()

/** The one model registry: a model name clients ask for → where it is served. */
export const modelSchema = z
  .object({
    /** Other names clients may use for this model. */
    aliases: z.array(nonEmptyString('a model alias')).default([]),
    /** LoRA adapters served by the same deployments, requested (and served) by adapter name. */
    loras: z.array(nonEmptyString('a LoRA adapter name')).default([]),
    deployments: z
      .array(
        z
          .object({
            upstream: nonEmptyString('an upstream name'),
            /** The name the upstream serves the model under; defaults to the registry name. */
            model: nonEmptyString('a served model name').optional(),
          })
          .strict(),
      )
      .min(1, { error: 'expected at least one deployment' }),
  })
  .strict()

/**
 * Headers an edit may remove but not write. Aya (and undici, Node) frame each message and manage
 * each connection themselves: a Content-Length set on a response went out ahead of the upstream's
 * whole body, so a keep-alive client read the rest as its next response, and undici refuses these
 * on a request, failing every request as a connect failure that counts against the endpoint.
 */
const UNWRITABLE_HEADERS: ReadonlySet<string> = new Set([
  'content-length',
  ...[...HOP_BY_HOP].filter((name) => !name.startsWith('proxy-auth')),
])

/** `set` or `add`: header values to write, none of them one Aya frames the message with. */
const writtenHeaders = (op: 'set' | 'add') =>
  z
    .record(headerName, headerValue)
    .superRefine((headers, ctx) => {
      for (const name of Object.keys(headers)) {
        const lower = name.toLowerCase()
        if (UNWRITABLE_HEADERS.has(lower)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `${lower} frames the message or belongs to one connection, which Aya manages itself; it may only be removed`,
          })
        } else if (op === 'add' && lower === 'host') {
          // A second Host makes a request servers must refuse (RFC 9112 §3.2); `set` replaces it.
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'a request carries one Host: use set to replace it',
          })
        }
      }
    })
    .default({})

const headerEditsSchema = z
  .object({
    set: writtenHeaders('set'),
    add: writtenHeaders('add'),
    remove: z.array(headerName).default([]),
  })
  .strict()

/** A route's host pattern: a host name or address, or `*.` and a domain. */
const MATCH_HOST = /^(?:\*\.)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*)$/

const matchSchema = z
  .object({
    pathPrefix: z.string().startsWith('/', { error: 'expected a path starting with /' }).optional(),
    path: z.string().startsWith('/', { error: 'expected a path starting with /' }).optional(),
    // Routes match the Host without its port: a pattern with one, or any other shape, would never.
    host: nonEmptyString('a host name')
      .regex(MATCH_HOST, {
        error:
          'expected a host name without a port (routes match the Host’s name alone), or *.domain',
      })
      .optional(),
    method: z
      .union([
        httpMethod,
        z
          .array(httpMethod)
          .min(1, { error: 'expected at least one method (an empty list matches no request)' }),
      ])
      .optional(),
    headers: z.record(headerName, z.string()).optional(),
  })
  .strict()

/**
 * A host name (letters, digits, `-`, `.`, and `_` as internal names use it, a trailing dot
 * allowed), an IPv4 address or a bracketed IPv6 one, and an optional port: what Host may carry.
 * No `/`, `@`, `?` or space, which would turn a Location built from it into another URL.
 */
export const HOST_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*)(?::\d{1,5})?$/
const CONTROL_ERROR = 'must not contain control characters such as CR or LF'

const redirectSchema = z
  .object({
    scheme: z.enum(['http', 'https']).optional(),
    host: nonEmptyString('a host')
      .regex(HOST_NAME, { error: 'expected a host name or IP address, optionally with :port' })
      .optional(),
    port: port.optional(),
    path: z
      .string()
      .startsWith('/')
      .refine((v) => hasNoControlCharacters(v), { error: CONTROL_ERROR })
      .optional(),
    pathPrefix: z
      .string()
      .startsWith('/')
      .refine((v) => hasNoControlCharacters(v), { error: CONTROL_ERROR })
      .optional(),
    status: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
        error: 'expected one of 301, 302, 303, 307, 308',
      })
      .default(301),
    stripQuery: z.boolean().default(false),
  })
  .strict()

const splitEntrySchema = z
  .object({ upstream: nonEmptyString('an upstream name'), weight: nonNegativeInt })
  .strict()

export const routeSchema = z
  .object({
    name: nonEmptyString('a route name').optional(),
    match: matchSchema.default({}),
    /** `models`: an LLM route; the request's `model` picks the upstream through the registry. */
    gateway: z.literal('models', { error: 'expected "models"' }).optional(),
    /** Header whose value keeps a conversation on one endpoint (LLM routes); any case. */
    sessionHeader: headerName.transform((name) => name.toLowerCase()).default('x-session-id'),
    /** The priority class (or integer) of requests that do not name one in the priority header. */
    priority: z
      .union(
        [
          z.string().min(1, { error: 'expected a priority class name or an integer' }),
          z.number().int(),
        ],
        {
          error: 'expected a priority class name or an integer',
        },
      )
      .optional(),
    /** Echo the chosen endpoint in `x-aya-endpoint` (off by default: it reveals topology). */
    debugHeaders: z.boolean().default(false),
    upstream: nonEmptyString('an upstream name').optional(),
    split: z.array(splitEntrySchema).min(1).optional(),
    redirect: redirectSchema.optional(),
    rewrite: z
      .object({
        pathPrefix: z.string().startsWith('/', { error: 'expected a path starting with /' }),
      })
      .strict()
      .optional(),
    requestHeaders: headerEditsSchema.optional(),
    responseHeaders: headerEditsSchema.optional(),
    mirror: z
      .object({
        upstream: nonEmptyString('an upstream name'),
        percent: z.number().min(0).max(100).default(100),
      })
      .strict()
      .optional(),
    timeouts: partialTimeoutsSchema.optional(),
    maxBodyBytes: positiveInt('a positive integer of bytes').optional(),
  })
  .strict()

export const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    access: z.boolean().default(true),
  })
  .strict()

/** Why the Redis store could not connect to a URL, in its own parser's words. */
function checkRedisUrl(url: string, ctx: z.RefinementCtx): void {
  try {
    redisConnectionOptions(url)
  } catch (error) {
    // The config error names the value itself (its password masked).
    const why = error instanceof Error ? error.message.replace(/, got .*$/, '') : String(error)
    ctx.addIssue({ code: 'custom', message: why })
  }
}

/**
 * Where shared state lives: in this process (`memory`), or on a Redis server shared by every Aya
 * replica (sticky bindings, the prefix index's announcements). Read at start; a reload keeps the
 * store it has.
 */
export const stateSchema = z
  .object({
    store: z.enum(['memory', 'redis'], { error: 'expected memory or redis' }).default('memory'),
    /** `redis://host:port[/db]`, `rediss://…` or `unix:///path/to/redis.sock`. */
    url: z
      .string({ error: 'expected a redis://, rediss:// or unix:// URL' })
      .superRefine(checkRedisUrl)
      .optional(),
    /** Put before every key and channel, so deployments can share one Redis. */
    keyPrefix: z.string().default('aya:'),
    commandTimeoutMs: timerMs.default(1000),
  })
  .strict()
  .refine((state) => state.store !== 'redis' || state.url !== undefined, {
    error: 'store redis needs a url',
    path: ['url'],
  })

export const configSchema = z
  .object({
    listeners: z.array(listenerSchema).min(1, { error: 'expected at least one listener' }),
    admin: adminSchema.default({ address: '127.0.0.1', port: 9901 }),
    /** CIDRs whose X-Forwarded-For is believed. */
    trustedProxies: z.array(z.string()).default([]),
    routes: z.array(routeSchema).min(1, { error: 'expected at least one route' }),
    upstreams: z.record(z.string(), upstreamSchema),
    // A client's `model` is never empty (an LLM route answers 400 to one), so an entry named ""
    // could never be asked for, yet `GET /v1/models` would list it.
    models: z.record(nonEmptyString('a model name'), modelSchema).default({}),
    /** Priority classes for admission (x-priority header by default). */
    priorities: prioritiesSchema.prefault({}),
    state: stateSchema.prefault({}),
    log: logSchema.default({ level: 'info', access: true }),
    shutdown: z
      .object({ drainTimeoutMs: timerMs.default(30_000) })
      .strict()
      .default({ drainTimeoutMs: 30_000 }),
  })
  .strict()

export type Config = z.output<typeof configSchema>
export type ListenerConfig = z.output<typeof listenerSchema>
export type UpstreamConfig = z.output<typeof upstreamSchema>
export type RouteConfig = z.output<typeof routeSchema>
export type TimeoutsConfig = z.output<typeof timeoutsSchema>
export type StateConfig = z.output<typeof stateSchema>
export type HeaderEdits = z.output<typeof headerEditsSchema>
export type RedirectConfig = z.output<typeof redirectSchema>
export type ModelConfig = z.output<typeof modelSchema>
export type SimUpstreamConfig = z.output<typeof simUpstreamSchema>
export type AdmissionConfig = z.output<typeof admissionSchema>
