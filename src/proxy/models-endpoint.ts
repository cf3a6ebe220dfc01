import { MAX_MODEL_CHARS } from '../llm/llm-body.ts'
import type { ModelRegistry } from '../llm/model-registry.ts'

/**
 * A reply to `GET /v1/models` or `GET /v1/models/{id}`: the body, an id the registry does not
 * know, or a query parameter out of the API's range (a 400 naming it).
 */
export type ModelsEndpointReply =
  | { readonly kind: 'found'; readonly body: string }
  | { readonly kind: 'unknown'; readonly id: string }
  | { readonly kind: 'invalid'; readonly param: string; readonly message: string }

/** Aya knows no release dates; Anthropic's SDK documents the epoch for "unknown". */
const EPOCH = '1970-01-01T00:00:00Z'
const ANTHROPIC_DEFAULT_LIMIT = 20
const ANTHROPIC_MAX_LIMIT = 1000

/**
 * The models endpoints, in OpenAI's shape or, for an Anthropic client, Anthropic's. The list holds
 * the registry's concrete names (models, aliases, LoRA adapters), never wildcard patterns: a client
 * cannot send `claude-*` as a model. Retrieving an id answers for any name the registry resolves,
 * wildcard matches included, since a request for it would be served; anything else is unknown,
 * a name longer than a request may carry too.
 * `path` is the request path without its query; it must be `/v1/models` or start `/v1/models/`.
 */
export function modelsEndpointReply(
  registry: ModelRegistry,
  path: string,
  query: URLSearchParams,
  anthropic: boolean,
): ModelsEndpointReply {
  if (path === '/v1/models') {
    const names = registry.names()
    // OpenAI's list takes no query parameters; Anthropic's pages by `limit` and a cursor.
    if (!anthropic) return { kind: 'found', body: openAiList(names) }
    const limit = anthropicLimit(query.get('limit'))
    if (limit === undefined) {
      return {
        kind: 'invalid',
        param: 'limit',
        message: `limit: must be an integer from 1 to ${ANTHROPIC_MAX_LIMIT}`,
      }
    }
    return { kind: 'found', body: anthropicPage(names, limit, query) }
  }
  const id = decodeId(path.slice('/v1/models/'.length))
  // A name longer than a request may send would be refused there (400), not served.
  if (id === '' || id.length > MAX_MODEL_CHARS || registry.resolve(id) === undefined) {
    return { kind: 'unknown', id }
  }
  return {
    kind: 'found',
    body: JSON.stringify(anthropic ? anthropicModel(id) : openAiModel(id)),
  }
}

const openAiModel = (id: string) => ({ id, object: 'model', created: 0, owned_by: 'aya' })

const anthropicModel = (id: string) => ({
  type: 'model',
  id,
  display_name: id,
  created_at: EPOCH,
})

function openAiList(names: readonly string[]): string {
  return JSON.stringify({ object: 'list', data: names.map(openAiModel) })
}

/** Anthropic's `limit`: 20 when absent, else an integer from 1 to 1000 (undefined otherwise). */
function anthropicLimit(asked: string | null): number | undefined {
  if (asked === null) return ANTHROPIC_DEFAULT_LIMIT
  if (!/^\d{1,4}$/.test(asked)) return undefined
  const limit = Number(asked)
  return limit >= 1 && limit <= ANTHROPIC_MAX_LIMIT ? limit : undefined
}

/** Anthropic's cursor pages: `limit` items, with `after_id` or `before_id` as the cursor. */
function anthropicPage(names: readonly string[], limit: number, query: URLSearchParams): string {
  const afterId = query.get('after_id')
  const beforeId = query.get('before_id')
  let page: readonly string[]
  let hasMore: boolean
  if (beforeId !== null) {
    // A cursor no longer listed (the config was reloaded) ends the walk rather than restarting it.
    const end = names.indexOf(beforeId)
    const start = Math.max(0, end - limit)
    page = end < 0 ? [] : names.slice(start, end)
    hasMore = end > 0 && start > 0
  } else {
    const start = afterId === null ? 0 : names.indexOf(afterId) + 1
    page = afterId !== null && start === 0 ? [] : names.slice(start, start + limit)
    hasMore = page.length > 0 && start + limit < names.length
  }
  return JSON.stringify({
    data: page.map(anthropicModel),
    has_more: hasMore,
    first_id: page[0] ?? null,
    last_id: page.at(-1) ?? null,
  })
}

/** SDKs percent-encode the id (a `/` in `org/model` becomes `%2F`); a malformed escape stays as is. */
function decodeId(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}
