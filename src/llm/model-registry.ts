import type { ModelConfig } from '../config/schema.ts'

export interface ModelDeployment {
  readonly upstream: string
  /** The name the upstream serves the model under. */
  readonly servedModel: string
}

/**
 * The one model registry: the model a client asks for → the deployments that serve it. Later issues
 * add aliases, wildcards, LoRA names, provider deployments, fallbacks and splits here.
 */
export interface ModelRegistry {
  resolve(model: string): ModelDeployment | undefined
  /** Every configured model name, sorted: `GET /v1/models` and unknown-model errors list these. */
  names(): readonly string[]
}

export function createModelRegistry(models: Readonly<Record<string, ModelConfig>>): ModelRegistry {
  const table = new Map<string, ModelDeployment>()
  for (const [name, model] of Object.entries(models)) {
    const first = model.deployments[0]!
    table.set(name, { upstream: first.upstream, servedModel: first.model ?? name })
  }
  const names = Object.freeze([...table.keys()].sort())
  return {
    resolve: (model) => table.get(model),
    names: () => names,
  }
}
