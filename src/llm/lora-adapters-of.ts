import type { ModelConfig } from '../config/schema.ts'

/**
 * The LoRA adapters the models registered on `upstream` name, sorted: what an engine behind it
 * must serve for their requests (which go out under the adapter's name) to find their adapter.
 */
export function loraAdaptersOf(
  models: Readonly<Record<string, ModelConfig>>,
  upstream: string,
): string[] {
  const adapters = new Set<string>()
  for (const model of Object.values(models)) {
    if (model.deployments[0]?.upstream === upstream)
      for (const lora of model.loras) adapters.add(lora)
  }
  return [...adapters].sort()
}
