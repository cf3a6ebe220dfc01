// Config files for the gateway benchmark: the upstream nginx with its fixed OpenAI answers, Aya's
// models gateway, and the wrk script that posts one workload's body. All on 127.0.0.1 only.
import { ayaListenersYaml, nginxConf } from '../proxy/configs.ts'
import {
  completionJson,
  completionSse,
  LARGE_BODY_BYTES,
  promptTokensFor,
  USAGE,
  usageJson,
} from './answers.ts'

export const CHAT_PATH = '/v1/chat/completions'
/** Asks the upstream for the streamed answer. */
export const ANSWER_HEADER = 'x-bench-answer'
/** Portkey forwards no client header upstream, so it is pointed under this prefix instead. */
export const SSE_PREFIX = '/sse'
const SSE_PATH = `${SSE_PREFIX}${CHAT_PATH}`

/** A string as an nginx single-quoted string: only `'` and `\` need escaping, `$` must not occur. */
function nginxQuoted(text: string): string {
  if (text.includes('$')) throw new Error('nginx would read "$" as a variable')
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n')}'`
}

/**
 * nginx answering `POST /v1/chat/completions` with the fixed chat.completion, or with the fixed
 * SSE stream when the request carries `x-bench-answer: sse` or comes to SSE_PATH; the usage block
 * is the short or the long prompt's by the request's size. `GET /` answers `200 "ok"`.
 */
export function llmUpstreamConf(dir: string, name: string, port: number): string {
  // The placeholder needs no escaping, so it is swapped for the variable once quoted.
  const answer = (text: string) => nginxQuoted(text).replace(USAGE, '$bench_usage')
  const large = String(LARGE_BODY_BYTES).length
  return nginxConf(
    dir,
    name,
    `  map $http_content_length $bench_usage {
    default ${nginxQuoted(usageJson(promptTokensFor(0)))};
    "~^[0-9]{${large},}$" ${nginxQuoted(usageJson(promptTokensFor(LARGE_BODY_BYTES)))};
  }
  server { listen 127.0.0.1:${port} backlog=4096;
    location = ${CHAT_PATH} {
      if ($http_${ANSWER_HEADER.replaceAll('-', '_')} = "sse") { rewrite ^ ${SSE_PATH} last; }
      default_type application/json; return 200 ${answer(completionJson())};
    }
    location = ${SSE_PATH} { default_type text/event-stream; return 200 ${answer(completionSse())}; }
    location / { return 200 "ok"; }
  }
`,
  )
}

export type AyaPolicy = 'aya' | 'least-request'

/** Aya as an LLM gateway: one `gateway: models` route, one model on one endpoint, access log on. */
export function ayaModelsYaml(
  port: number,
  adminPort: number,
  upstreamPort: number,
  policy: AyaPolicy,
  model: string,
): string {
  return `${ayaListenersYaml(port, adminPort)}routes:
  - match: { pathPrefix: /v1 }
    gateway: models
models:
  ${model}:
    deployments:
      - upstream: llm
upstreams:
  llm:
    policy: ${policy}
    # An OpenAI-compatible API, as Portkey is pointed at: no engine /metrics to scrape.
    engineMetrics: false
    endpoints:
      - url: http://127.0.0.1:${upstreamPort}
`
}

/** A Lua string literal for a wrk script (paths and header values are printable ASCII). */
function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`not printable ASCII: ${text}`)
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/** A wrk script posting the body in `bodyFile` with `headers` on every request. */
export function wrkPostScript(bodyFile: string, headers: Readonly<Record<string, string>>): string {
  const lines = Object.entries(headers).map(
    ([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`,
  )
  return `local file = assert(io.open(${luaString(bodyFile)}, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
${lines.join('\n')}
`
}
