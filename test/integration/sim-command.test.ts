import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSimCommand } from '../../src/sim/sim-command.ts'

function capture() {
  const out = { stdout: '', stderr: '' }
  const io = {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
  }
  return { out, io }
}

describe('aya sim command', () => {
  it('prints one URL per replica and then ready', async (t) => {
    const { out, io } = capture()
    const result = await runSimCommand(
      [
        '--replicas',
        '2',
        '--profile',
        'h100-llama3-8b',
        '--port',
        '0',
        '--speedup',
        '50',
        '--seed',
        '3',
      ],
      io,
    )
    assert.equal(typeof result, 'object')
    if (typeof result === 'number') return
    t.after(() => result.close())
    const lines = out.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 3)
    assert.equal(lines[2], 'ready')
    for (const url of lines.slice(0, 2)) {
      assert.equal((await fetch(`${url}/health`)).status, 200)
    }
  })

  it('serves SGLang metric names with --metrics-dialect sglang', async (t) => {
    const { out, io } = capture()
    const argv = ['--replicas', '1', '--profile', 'h100-llama3-8b', '--port', '0']
    const result = await runSimCommand([...argv, '--metrics-dialect', 'sglang'], io)
    if (typeof result === 'number') assert.fail(out.stderr)
    t.after(() => result.close())
    const url = out.stdout.split('\n')[0]!
    const page = await (await fetch(`${url}/metrics`)).text()
    assert.match(page, /^sglang:num_running_reqs/m)
    assert.doesNotMatch(page, /^vllm:/m)
  })

  it('serves the LoRA adapters --lora-modules names, as vLLM’s NAME=PATH or a bare NAME', async (t) => {
    const { out, io } = capture()
    const argv = ['--replicas', '1', '--profile', 'h100-llama3-8b', '--port', '0']
    const loras = ['--lora-modules', 'sql-lora=/adapters/sql', '--lora-modules', 'chat-lora']
    const result = await runSimCommand([...argv, ...loras], io)
    if (typeof result === 'number') assert.fail(out.stderr)
    t.after(() => result.close())
    const url = out.stdout.split('\n')[0]!
    const models = (await (await fetch(`${url}/v1/models`)).json()) as {
      data: Array<{ id: string }>
    }
    assert.deepEqual(models.data.map((card) => card.id).slice(1), ['sql-lora', 'chat-lora'])
  })

  it('exits 2 with a message for bad flags', async () => {
    for (const argv of [
      ['--replicas', '2'],
      ['--profile', 'h100-llama3-8b'],
      ['--replicas', 'two', '--profile', 'h100-llama3-8b'],
      ['--replicas', '2', '--profile', 'h100-llama3-8b', '--speedup', '0'],
      ['--replicas', '2', '--profile', 'h100-llama3-8b', '--bogus'],
      ['--replicas', '3', '--profile', 'h100-llama3-8b:2,a100-llama3-8b:2'],
      ['--replicas', '1', '--profile', 'tpu'],
      ['--replicas', '2', '--profile', 'h100-llama3-8b', '--port', '65535'],
      ['--replicas', '1', '--profile', 'h100-llama3-8b', '--metrics-dialect', 'tgi'],
      ['--replicas', '1', '--profile', 'h100-llama3-8b', '--lora-modules', '=/adapters/sql'],
      ['--replicas', '1', '--profile', 'h100-llama3-8b', '--lora-modules', '{"name":"sql"}'],
    ]) {
      const { out, io } = capture()
      assert.equal(await runSimCommand(argv, io), 2, argv.join(' '))
      assert.match(out.stderr, /^aya sim: .+\n\nUsage: aya sim/, argv.join(' '))
      assert.equal(out.stdout, '')
    }
  })

  it('prints usage and exits 0 for --help', async () => {
    const { out, io } = capture()
    assert.equal(await runSimCommand(['--help'], io), 0)
    assert.match(out.stdout, /--replicas N/)
  })
})
