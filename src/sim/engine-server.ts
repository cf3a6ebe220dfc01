import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { Clock } from '../util/clock.ts'
import { mix32 } from '../util/hash.ts'
import { pathOf } from '../util/request-target.ts'
import { isAnthropicError, parseAnthropicRequest } from './anthropic-request.ts'
import { adapterPromptIdentity } from './block-hash.ts'
import { createEngine, type Engine } from './engine.ts'
import { createEngineMetrics } from './engine-metrics.ts'
import { runInference, sendApiError, sendError, sendJson } from './inference-handler.ts'
import type { InferenceRequest, SimApi } from './inference-request.ts'
import { isError, parseOpenAiRequest } from './openai-request.ts'
import type { EngineProfile } from './profiles.ts'
import { createSglangEngineMetrics, type MetricsDialect } from './sglang-metrics.ts'

/** Bodies past this are refused with 413: a 131k-token prompt is well under it. */
const MAX_BODY_BYTES = 32 * 1024 * 1024

export interface EngineServerOptions {
  readonly profile: EngineProfile
  readonly seed?: number
  /** Engine-time milliseconds after start during which the replica answers 503 ("loading"). */
  readonly startupMs?: number
  readonly host?: string
  /** 0 (the default) picks an ephemeral port. */
  readonly port?: number
  /** Defaults to the profile's model name. */
  readonly modelName?: string
  /**
   * The metric names `/metrics` speaks: `vllm` (the default) or `sglang`, for a router's view of
   * an SGLang fleet (`sglang-metrics.ts`). The engine and its API are the same either way.
   */
  readonly metricsDialect?: MetricsDialect
  /**
   * LoRA adapters served beside the base model, by name, as vLLM's `--lora-modules` loads them:
   * a request names one as its `model`, its prompt caches apart from the base model's and the
   * other adapters', and `/v1/models` lists it with the base model as `parent`.
   */
  readonly loras?: readonly string[]
}

export interface EngineServerDeps {
  /** Engine time: a scaled clock for `--speedup`, a manual clock in tests. */
  readonly clock: Clock
}

export interface EngineServer {
  readonly url: string
  readonly port: number
  readonly engine: Engine
  readonly registry: Registry
  /** Serves these LoRA adapters from now on, as vLLM's `/v1/load_lora_adapter` and unload do. */
  setLoras(names: readonly string[]): void
  close(): Promise<void>
}

const INFERENCE_PATHS: Record<string, SimApi> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  // As SGLang and vLLM serve Anthropic's Messages API beside OpenAI's.
  '/v1/messages': 'messages',
}

const RESPONSE_ID_PREFIXES: Record<SimApi, string> = {
  chat: 'chatcmpl',
  completions: 'cmpl',
  messages: 'msg',
}

/** vLLM's `ModelPermission` defaults after its id, object and created, as `/v1/models` lists them. */
const MODEL_PERMISSION_FLAGS = {
  allow_create_engine: false,
  allow_sampling: true,
  allow_logprobs: true,
  allow_search_indices: false,
  allow_view: true,
  allow_fine_tuning: false,
  organization: '*',
  group: null,
  is_blocking: false,
} as const

/** Paths served to GET (and HEAD) only. */
const GET_PATHS: ReadonlySet<string> = new Set(['/health', '/v1/models', '/metrics'])

/** The host to put in a URL: a wildcard listen address is reached on loopback. */
function urlHostFor(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data')
        req.resume()
        resolve('too-large')
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/**
 * One simulated vLLM replica over `node:http`: the OpenAI chat and completions APIs, Anthropic's
 * messages API, `/v1/models`,
 * `/health` and `/metrics` with vLLM's names (or SGLang's, with `metricsDialect`). Unlike vLLM,
 * which does not listen until its engine is ready, it listens at once and answers 503 during
 * `startupMs`.
 */
export async function startEngineServer(
  options: EngineServerOptions,
  deps: EngineServerDeps,
): Promise<EngineServer> {
  const { profile } = options
  const { clock } = deps
  const modelName = options.modelName ?? profile.modelName
  let loras: ReadonlySet<string> = new Set(options.loras ?? [])
  const seed = options.seed ?? 1
  const startedAtMs = clock.now()
  const startupMs = options.startupMs ?? 0
  let nextResponse = 0
  // The metrics read the engine's stats only at scrape time, after `engine` exists.
  const createMetrics =
    options.metricsDialect === 'sglang' ? createSglangEngineMetrics : createEngineMetrics
  const metrics = createMetrics({ profile, modelName }, () => engine.stats())
  const engine = createEngine({ profile, seed }, { clock, observer: metrics.observer })

  // Seeded, and apart from the response counter, so listing models never shifts response ids.
  const permissionId = `modelperm-${mix32(seed ^ 0x5eed)
    .toString(16)
    .padStart(8, '0')}`
  const isStarting = (): boolean => clock.now() - startedAtMs < startupMs
  const responseId = (prefix: string): string =>
    `${prefix}-${mix32(seed).toString(16).padStart(8, '0')}${(nextResponse++).toString(16).padStart(8, '0')}`

  const handleInference = async (
    api: SimApi,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> => {
    if (isStarting()) {
      return sendApiError(res, api, 503, 'The model is still loading.', {
        code: 503,
        type: 'service_unavailable',
      })
    }
    const raw = await readBody(req)
    if (raw === 'too-large') return sendApiError(res, api, 413, 'The request body is too large.')
    let body: unknown
    try {
      body = JSON.parse(raw.toString('utf8'))
    } catch (error) {
      const message = `The request body is not valid JSON: ${(error as Error).message}`
      return sendApiError(res, api, 400, message)
    }
    let request: InferenceRequest
    if (api === 'messages') {
      const parsed = parseAnthropicRequest(body, profile.blockSizeTokens)
      if (isAnthropicError(parsed)) return sendApiError(res, api, 400, parsed.message)
      request = parsed
    } else {
      const parsed = parseOpenAiRequest(api, body, profile.blockSizeTokens)
      if (isError(parsed)) return sendApiError(res, api, 400, parsed.message, parsed)
      request = parsed
    }
    const adapter =
      request.model !== undefined && request.model !== modelName && loras.has(request.model)
        ? request.model
        : undefined
    if (request.model !== undefined && request.model !== modelName && adapter === undefined) {
      const message = `The model \`${request.model}\` does not exist.`
      return sendApiError(res, api, 404, message, { param: 'model', code: 'model_not_found' })
    }
    if (adapter !== undefined) {
      request = { ...request, prompt: adapterPromptIdentity(request.prompt, adapter) }
    }
    const identity = {
      id: responseId(RESPONSE_ID_PREFIXES[api]),
      created: Math.floor(clock.wallNow() / 1000),
      // vLLM answers under the adapter's name.
      model: adapter ?? modelName,
    }
    runInference(engine, request, identity, req, res)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req.url ?? '/')
    const api = INFERENCE_PATHS[path]
    if (api) {
      if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' })
      return handleInference(api, req, res)
    }
    // As FastAPI answers: 405 only on a path that exists for other methods.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return GET_PATHS.has(path)
        ? sendJson(res, 405, { detail: 'Method Not Allowed' })
        : sendJson(res, 404, { detail: 'Not Found' })
    }
    if (path === '/health') {
      res.writeHead(isStarting() ? 503 : 200, { 'content-length': 0 })
      return void res.end()
    }
    if (path === '/v1/models') {
      const created = Math.floor(clock.wallNow() / 1000)
      // vLLM's ModelCard carries one default ModelPermission; clients that read the OpenAI
      // model object may expect the list.
      const permission = [
        { id: permissionId, object: 'model_permission', created, ...MODEL_PERMISSION_FLAGS },
      ]
      const card = { object: 'model', created, owned_by: 'vllm' }
      const data = isStarting()
        ? []
        : [
            {
              id: modelName,
              ...card,
              root: modelName,
              parent: null,
              max_model_len: profile.maxModelLen,
              permission,
            },
            // As vLLM lists a loaded adapter: its path as root (the sim has only the name), the
            // base model as parent, no length of its own.
            ...[...loras].map((lora) => ({
              id: lora,
              ...card,
              root: lora,
              parent: modelName,
              max_model_len: null,
              permission,
            })),
          ]
      return sendJson(res, 200, { object: 'list', data })
    }
    if (path === '/metrics') {
      const text = await metrics.registry.metrics()
      res.writeHead(200, { 'content-type': metrics.registry.contentType })
      return void res.end(text)
    }
    sendJson(res, 404, { detail: 'Not Found' })
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(error), null, null, 'internal_error')
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const urlHost = urlHostFor(options.host ?? '127.0.0.1')
  let closing: Promise<void> | undefined

  return {
    url: `http://${urlHost}:${port}`,
    port,
    engine,
    registry: metrics.registry,
    setLoras(names) {
      loras = new Set(names)
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        engine.close()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
