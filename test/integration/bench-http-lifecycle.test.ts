import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { AYA_BIN } from '../helpers/cli.ts'
import { eventually } from '../helpers/eventually.ts'
import { TRACE_FILES, tracePath } from '../unit/bench/shared-traces.ts'

/**
 * A run long enough (60 trace s at 2× speed: 30 s of replay) that a bench which waited for the
 * trace to end, instead of stopping, fails these tests' time limits.
 */
const LONG_RUN = [
  'bench',
  '--mode',
  'http',
  '--trace',
  tracePath(TRACE_FILES.mooncakeConversation),
  '--window',
  '0:60',
  '--length-scale',
  '0.25',
  '--max-tokens',
  '32',
  '--speedup',
  '2',
  '--policies',
  'round-robin',
  '--replicas',
  '2',
  '--profile',
  'h100-llama3-8b',
  '--no-progress',
]

interface Child {
  readonly pid: number
  /** `sim`, `start` (an Aya) or `redis-server`. */
  readonly kind: string
  readonly args: string
}

/** Every process a test saw, killed after it whatever happened. */
const seen = new Map<number, Child>()

/** The bench's own processes (the short `aya validate` probes left out unless asked for). */
function childrenOf(pid: number, options: { withProbes?: boolean } = {}): Child[] {
  let text: string
  try {
    text = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
  } catch {
    return [] // ps exits 1 when there are none
  }
  return text
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const args = m[2]!
      const kind = args.startsWith('redis-server')
        ? 'redis-server'
        : (/aya\.js (sim|start|validate) /.exec(args)?.[1] ?? 'other')
      return { pid: Number(m[1]), kind, args }
    })
    .filter((c) => options.withProbes === true || c.kind !== 'validate')
    .map((c) => {
      seen.set(c.pid, c)
      return c
    })
}

/** Still running: a zombie (exited, not yet reaped by whoever inherited it) counts as gone. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

async function startBench(
  t: { after(fn: () => unknown): void },
  extra: readonly string[] = [],
): Promise<{ bench: ChildProcess; stderr: () => string; exit: Promise<unknown[]> }> {
  const out = await mkdtemp(join(tmpdir(), 'aya-bench-lifecycle-'))
  const bench = spawn(process.execPath, [AYA_BIN, ...LONG_RUN, ...extra, '--out', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const exit = once(bench, 'exit')
  let stderr = ''
  bench.stderr!.on('data', (chunk) => {
    stderr += chunk
  })
  t.after(async () => {
    // Whatever the outcome, leave nothing behind.
    bench.kill('SIGKILL')
    for (const child of seen.values()) if (running(child.pid)) process.kill(child.pid, 'SIGKILL')
    for (const child of seen.values()) {
      const dir = /unixsocket:(\S+)\/redis\.sock/.exec(child.args)?.[1]
      if (dir) await rm(dir, { recursive: true, force: true })
    }
    seen.clear()
    await rm(out, { recursive: true, force: true })
  })
  return { bench, stderr: () => stderr, exit }
}

async function childrenOnceUp(bench: ChildProcess, kinds: readonly string[]): Promise<Child[]> {
  let children: Child[] = []
  await eventually(
    () => {
      children = childrenOf(bench.pid!)
      return kinds.every(
        (kind) =>
          children.filter((c) => c.kind === kind).length >= kinds.filter((k) => k === kind).length,
      )
    },
    `the bench started ${kinds.join(', ')}`,
    20_000,
  )
  return children
}

/** Waits for the bench to exit, at most `withinMs`, and returns its exit code. */
async function exitCode(
  exit: Promise<unknown[]>,
  withinMs: number,
  stderr: () => string,
): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the bench still runs after ${withinMs} ms:\n${stderr()}`)),
      withinMs,
    )
  })
  try {
    const [code] = await Promise.race([exit, late])
    return code as number | null
  } finally {
    clearTimeout(timer)
  }
}

function assertAllGone(children: readonly Child[]): void {
  const left = children.filter((c) => running(c.pid))
  assert.deepEqual(
    left.map((c) => `${c.kind} ${c.pid}`),
    [],
    'processes the bench started outlived it',
  )
}

describe('aya bench --mode http: its processes end with it', () => {
  test('SIGTERM mid-run stops every process it started, removes their temporary files and exits 143 saying why', async (t) => {
    const { bench, stderr, exit } = await startBench(t, ['--routers', '2', '--shared-state'])
    const children = await childrenOnceUp(bench, ['redis-server', 'sim', 'start', 'start'])
    const redisDir = /unixsocket:(\S+)\/redis\.sock/.exec(
      children.find((c) => c.kind === 'redis-server')!.args,
    )?.[1]
    assert.ok(redisDir, 'the redis-server shows its socket')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    bench.kill('SIGTERM')
    assert.equal(await exitCode(exit, 8000, stderr), 143, stderr())
    assert.match(stderr(), /SIGTERM/)
    assertAllGone(children)
    assert.equal(existsSync(redisDir), false, `${redisDir} is left behind`)
  })

  test('SIGINT while the processes start stops them too and exits 130', async (t) => {
    const { bench, stderr, exit } = await startBench(t)
    const children = await childrenOnceUp(bench, ['sim'])
    bench.kill('SIGINT')
    assert.equal(await exitCode(exit, 8000, stderr), 130, stderr())
    assert.match(stderr(), /SIGINT/)
    assertAllGone([...children, ...childrenOf(bench.pid!)])
  })

  test('SIGINT while it checks the Aya config stops that check too: no aya validate outlives it', async (t) => {
    const { bench, stderr, exit } = await startBench(t)
    let probes: Child[] = []
    await eventually(
      () => {
        probes = childrenOf(bench.pid!, { withProbes: true }).filter((c) => c.kind === 'validate')
        return probes.length > 0
      },
      'the bench runs aya validate',
      20_000,
    )
    bench.kill('SIGINT')
    assert.equal(await exitCode(exit, 8000, stderr), 130, stderr())
    assertAllGone([...probes, ...childrenOf(bench.pid!, { withProbes: true })])
  })

  test('its simulator and Ayas exit by themselves when the bench is killed with SIGKILL', async (t) => {
    const { bench, exit } = await startBench(t)
    const children = await childrenOnceUp(bench, ['sim', 'start'])
    bench.kill('SIGKILL')
    await exit
    await eventually(
      () => children.every((c) => !running(c.pid)),
      'the orphaned simulator and Aya exit',
      5_000,
    )
  })

  for (const kind of ['start', 'sim']) {
    const name = kind === 'start' ? 'an Aya' : 'the simulator'
    test(`${name} killed mid-run fails the run at once, naming it, and stops the others`, async (t) => {
      const { bench, stderr, exit } = await startBench(t)
      const children = await childrenOnceUp(bench, ['sim', 'start'])
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const victim = children.find((c) => c.kind === kind)!
      process.kill(victim.pid, 'SIGKILL')
      assert.equal(await exitCode(exit, 8000, stderr), 1, stderr())
      assert.match(
        stderr(),
        new RegExp(`aya ${kind} \\([^)]*pid ${victim.pid}\\) was killed by SIGKILL`),
      )
      assertAllGone(children)
    })
  }
})
