import assert from 'node:assert/strict'

/**
 * Waits on real time until `condition` holds, polling every 5 ms, and fails naming `what` after
 * `timeoutMs` (generous: a busy CI machine is slow, not wrong).
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const start = performance.now()
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) assert.fail(`never: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
