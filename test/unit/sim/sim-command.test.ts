import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runSimCommand } from '../../../src/sim/sim-command.ts'

test('refuses a --startup-ms past what a Node timer can wait, as every other timer value is bounded', async () => {
  let stderr = ''
  const io = {
    stdout: { write: () => true },
    stderr: { write: (text: string) => (stderr += text) },
  }
  const args = ['--replicas', '1', '--profile', 'h100-llama3-8b', '--port', '0', '--startup-ms']
  const started = await runSimCommand([...args, '2147483648'], io)
  if (typeof started !== 'number') await started.close()
  assert.equal(started, 2)
  assert.match(stderr, /--startup-ms must be an integer from 0 to 2147483647, got '2147483648'/)
  const atCap = await runSimCommand([...args, '2147483647'], io)
  assert.notEqual(typeof atCap, 'number')
  if (typeof atCap !== 'number') await atCap.close()
})
