import type { ModelConfig } from '../config/schema.ts'

export interface ModelDeployment {
  readonly upstream: string
  /** The name the upstream serves the model under. */
  readonly servedModel: string
  /** The registry entry that matched. */
  readonly canonical: string
}

/**
 * The one model registry: the model a client asks for → where it is served. A name resolves, in
 * order, as an exact model name, an alias, a LoRA adapter name (served under the adapter's own name
 * by the same deployment, as vLLM does), then the most specific wildcard (`gpt-4o*`). Aliases and
 * adapters of a wildcard entry work like those of a concrete one; an alias is served under the
 * deployment's `model` when set, otherwise under the alias itself, since a wildcard has no single
 * name to rewrite it to. Later issues add provider deployments, fallbacks and splits here.
 */
export interface ModelRegistry {
  resolve(model: string): ModelDeployment | undefined
  /** Every concrete name a client may use (models, aliases, LoRA adapters), sorted. */
  names(): readonly string[]
  /** The wildcard patterns as written (`gpt-4o*`), sorted: names match them, they are not names. */
  patterns(): readonly string[]
  /**
   * The LoRA adapters of the models deployed on `upstream`, sorted: what its engines must serve
   * for those requests, which go out under the adapter's name, to find their adapter.
   */
  loraAdapters(upstream: string): readonly string[]
}

interface Entry {
  readonly canonical: string
  readonly upstream: string
  /** The served name; undefined means "the name the client used". */
  readonly servedModel: string | undefined
}

export function createModelRegistry(models: Readonly<Record<string, ModelConfig>>): ModelRegistry {
  const exact = new Map<string, Entry>()
  const adaptersOn = new Map<string, Set<string>>()
  const wildcards: Array<{
    readonly prefix: string
    readonly suffix: string
    readonly entry: Entry
  }> = []
  for (const [name, model] of Object.entries(models)) {
    // Config validation refuses a second deployment until fallbacks and splits exist.
    const first = model.deployments[0]!
    const upstream = first.upstream
    const isWildcard = name.includes('*')
    // A wildcard entry has no single name to serve under when none is set: its aliases then keep
    // their own name.
    const served = first.model ?? (isWildcard ? undefined : name)
    if (isWildcard) {
      const star = name.indexOf('*')
      wildcards.push({
        prefix: name.slice(0, star),
        suffix: name.slice(star + 1),
        entry: { canonical: name, upstream, servedModel: served },
      })
    } else {
      exact.set(name, { canonical: name, upstream, servedModel: served })
    }
    for (const alias of model.aliases) {
      if (!exact.has(alias)) exact.set(alias, { canonical: name, upstream, servedModel: served })
    }
    for (const lora of model.loras) {
      if (!exact.has(lora)) exact.set(lora, { canonical: name, upstream, servedModel: lora })
      const adapters = adaptersOn.get(upstream) ?? new Set()
      adaptersOn.set(upstream, adapters.add(lora))
    }
  }
  // Most specific first: the longest fixed part wins.
  wildcards.sort((a, b) => b.prefix.length + b.suffix.length - (a.prefix.length + a.suffix.length))
  const names = Object.freeze([...exact.keys()].sort())
  const patterns = Object.freeze(wildcards.map((w) => w.entry.canonical).sort())
  const loraAdapters = new Map(
    [...adaptersOn].map(([upstream, adapters]) => [upstream, Object.freeze([...adapters].sort())]),
  )
  return {
    loraAdapters: (upstream) => loraAdapters.get(upstream) ?? [],
    resolve(model) {
      const hit = exact.get(model)
      if (hit)
        return {
          upstream: hit.upstream,
          servedModel: hit.servedModel ?? model,
          canonical: hit.canonical,
        }
      for (const { prefix, suffix, entry } of wildcards) {
        if (
          model.length >= prefix.length + suffix.length &&
          model.startsWith(prefix) &&
          model.endsWith(suffix)
        ) {
          return {
            upstream: entry.upstream,
            servedModel: entry.servedModel ?? model,
            canonical: entry.canonical,
          }
        }
      }
      return undefined
    },
    names: () => names,
    patterns: () => patterns,
  }
}
