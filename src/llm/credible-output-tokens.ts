/**
 * The output tokens a response's `usage` claims, believed only as far as the response could have
 * produced them: an endpoint that misreports (a rogue, or a buggy shim) would otherwise teach the
 * fleet-wide output-length predictor its claim. Five million claimed tokens learned into the
 * uncapped cells charge every request a huge predicted output as KV, so only an idle endpoint
 * passes the KV check, and the rogue that answers at once is always idle: it drew 90 % of the
 * traffic (test/integration/llm-black-hole.test.ts).
 *
 * Two bounds, each applied only when known:
 * - `maxTokens` per sequence: the engine stops every sequence at the request's cap;
 * - the body's bytes as the tap saw them (before any content coding is undone, so only an
 *   identity-coded body is counted): every generated token reaches the client as at least a
 *   byte, and the JSON or SSE framing around it leaves slack for a token that prints nothing (an
 *   end-of-sequence token). Tokens a response generates without sending (a hosted reasoning
 *   model's hidden reasoning) are not seen this way, and are learned only up to the body's size.
 */
export function credibleOutputTokens(
  claimedTokens: number,
  bounds: {
    /** The request's `max_tokens`, per sequence; undefined when it set none. */
    readonly maxTokens: number | undefined
    /** Sequences the request asked for (`n`); 1 when it asked for one. */
    readonly sequences: number
    /** Body bytes the response tap saw; undefined when it did not count them (no bound). */
    readonly bodyBytes: number | undefined
  },
): number {
  let credible = claimedTokens
  if (bounds.maxTokens !== undefined)
    credible = Math.min(credible, Math.max(0, bounds.maxTokens) * Math.max(1, bounds.sequences))
  if (bounds.bodyBytes !== undefined) credible = Math.min(credible, bounds.bodyBytes)
  return credible
}
