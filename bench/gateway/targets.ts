// The targets compared, and the request headers each needs for a workload.
import { ANSWER_HEADER, SSE_PREFIX } from './configs.ts'
import type { Workload } from './workloads.ts'

/** In table order: the references first, then the two gateways. */
export const TARGETS = [
  'direct',
  'nginx',
  'node-http',
  'portkey',
  'aya',
  'aya-least-request',
] as const
export type TargetName = (typeof TARGETS)[number]

/**
 * What a client of `target` sends. Everyone gets the same body and `Authorization`; Portkey is
 * told per request which provider and host to use (its documented way to reach any
 * OpenAI-compatible server), the others forward `x-bench-answer` to the upstream.
 */
export function headersFor(
  target: TargetName,
  workload: Workload,
  upstreamPort: number,
): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Authorization: 'Bearer bench',
  }
  if (workload.streamed) headers[ANSWER_HEADER] = 'sse'
  if (target === 'portkey') {
    const prefix = workload.streamed ? SSE_PREFIX : ''
    headers['x-portkey-provider'] = 'openai'
    headers['x-portkey-custom-host'] = `http://127.0.0.1:${upstreamPort}${prefix}/v1`
  }
  return headers
}
