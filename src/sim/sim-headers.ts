/**
 * The simulator's private request header: the true output length of a replayed request. The
 * engine stops there, so a benchmark can replay a trace's output lengths while the client sends
 * only a realistic `max_tokens`. Only `src/sim` and `src/bench` may read or set `x-aya-sim-*`.
 */
export const OUTPUT_TOKENS_HEADER = 'x-aya-sim-output-tokens'
