/** `aya bench` flags every run needs but `--policies`, pointing at a trace that is never read. */
export const BENCH_REQUIRED_ARGS: readonly string[] = [
  '--trace',
  'x.jsonl',
  '--replicas',
  '2',
  '--profile',
  'h100-llama3-8b',
  '--out',
  '/tmp/x',
]
