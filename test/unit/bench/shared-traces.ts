import { existsSync } from 'node:fs'
import { join } from 'node:path'

/** The shared trace folder beside the repository (`../shared/traces`). */
export const TRACES_DIR = join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'traces')

export const TRACE_FILES = {
  azureCode: 'azure_llm_2023_code.csv',
  azureConv: 'azure_llm_2023_conv.csv',
  mooncakeConversation: 'mooncake_fast25_conversation.jsonl',
  mooncakeSynthetic: 'mooncake_fast25_synthetic.jsonl',
  sharegpt: 'sharegpt_lengths_llama2.csv',
} as const

export function tracePath(name: string): string {
  return join(TRACES_DIR, name)
}

/** The traces live beside the checkout (`../shared/traces`); tests that read them fail without them. */
export function assertTracesPresent(): void {
  if (!existsSync(TRACES_DIR)) throw new Error(`no trace folder at ${TRACES_DIR}`)
}
