// Two builds of Aya side by side on bench:gateway's LLM route, to measure one change: both run
// pinned to CPU 1 before the same fixed-answer upstream, and wrk runs alternate between them
// (A B, then B A), so the machine's drift falls on both alike. Prints requests per CPU-second per
// round and the median ratio. A build is a checkout with `dist/` built (a git worktree, say).
//
//   node --import tsx bench/gateway/ab.ts --base ../wt-base [--new .] [--workload chat-32k]
//     [--policy aya] [--rounds 8] [--duration-s 4]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { type Server, startAya, startNginx } from '../proxy/servers.ts'
import { CLK_TCK, cpuTicks, ensureTools, killAllNow, stopAll } from '../proxy/system.ts'
import { runWrk } from '../proxy/wrk.ts'
import { MODEL } from './answers.ts'
import { answersEveryRequest } from './answers-probe.ts'
import {
  type AyaPolicy,
  ayaModelsYaml,
  CHAT_PATH,
  llmUpstreamConf,
  wrkPostScript,
} from './configs.ts'
import { headersFor } from './targets.ts'
import { WORKLOADS, type WorkloadName, workload } from './workloads.ts'

const log = (line: string) => process.stderr.write(`bench:ab: ${line}\n`)

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      base: { type: 'string' },
      new: { type: 'string', default: '.' },
      workload: { type: 'string', default: 'chat-32k' },
      policy: { type: 'string', default: 'aya' },
      rounds: { type: 'string', default: '8' },
      'duration-s': { type: 'string', default: '4' },
    },
  })
  if (values.base === undefined) throw new Error('--base DIR is required')
  if (!(WORKLOADS as readonly string[]).includes(values.workload))
    throw new Error(`--workload ${values.workload}: expected one of ${WORKLOADS.join(', ')}`)
  if (values.policy !== 'aya' && values.policy !== 'least-request')
    throw new Error(`--policy ${values.policy}: expected aya or least-request`)
  const policy: AyaPolicy = values.policy
  const rounds = Number(values.rounds)
  const durationS = Number(values['duration-s'])
  ensureTools(log)
  const dir = mkdtempSync(join(tmpdir(), 'aya-bench-ab-'))
  try {
    const upstream = await startNginx(dir, 'upstream', 0, 'upstream nginx (CPU 0)', (port) =>
      llmUpstreamConf(dir, 'upstream', port),
    )
    const w = workload(values.workload as WorkloadName)
    const bodyFile = join(dir, `${w.name}.json`)
    writeFileSync(bodyFile, w.body)
    const script = join(dir, `${w.name}.lua`)
    writeFileSync(script, wrkPostScript(bodyFile, headersFor('aya', w, upstream.port)))
    // startAya runs `dist/bin/aya.js` from the working directory: each build from its own.
    const start = async (checkout: string, name: string): Promise<Server> => {
      const here = process.cwd()
      process.chdir(resolve(checkout))
      try {
        return await startAya({
          dir,
          cpu: 1,
          upstreamPort: upstream.port,
          accessLog: join(dir, `${name}-access.log`),
          name,
          config: (port, adminPort) => ayaModelsYaml(port, adminPort, upstream.port, policy, MODEL),
          probe: answersEveryRequest([
            { workload: w, headers: headersFor('aya', w, upstream.port) },
          ]),
        })
      } finally {
        process.chdir(here)
      }
    }
    const base = await start(values.base, 'base')
    const next = await start(values.new, 'new')
    const perCpuS = async (server: Server, seconds: number): Promise<number> => {
      const before = cpuTicks(server.proc.pid!)
      const { result } = await runWrk({
        url: `http://127.0.0.1:${server.port}${CHAT_PATH}`,
        script,
        connections: 50,
        durationS: seconds,
        cpu: 0,
      })
      if (result.non2xx3xx > 0 || result.socketErrors > 0)
        throw new Error(
          `${server.name}: ${result.non2xx3xx} non-2xx, ${result.socketErrors} socket errors`,
        )
      return result.requests / ((cpuTicks(server.proc.pid!) - before) / CLK_TCK)
    }
    await perCpuS(base, 3)
    await perCpuS(next, 3)
    const ratios: number[] = []
    for (let round = 0; round < rounds; round++) {
      const [first, second] = round % 2 === 0 ? [base, next] : [next, base]
      const a = await perCpuS(first, durationS)
      const b = await perCpuS(second, durationS)
      const [baseRate, newRate] = round % 2 === 0 ? [a, b] : [b, a]
      ratios.push(newRate / baseRate)
      log(
        `round ${round + 1}/${rounds}: base ${baseRate.toFixed(0)}, new ${newRate.toFixed(0)} req per CPU-s, new ÷ base ${(newRate / baseRate).toFixed(3)}`,
      )
    }
    ratios.sort((x, y) => x - y)
    const mid = ratios.length / 2
    const median =
      ratios.length % 2 === 1 ? ratios[Math.floor(mid)]! : (ratios[mid - 1]! + ratios[mid]!) / 2
    process.stdout.write(
      `${w.name}, policy ${policy}: new ÷ base req per CPU-s, median of ${rounds} rounds ${median.toFixed(3)} [${ratios[0]!.toFixed(3)}–${ratios.at(-1)!.toFixed(3)}]\n`,
    )
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

process.on('exit', killAllNow)
main(process.argv.slice(2)).catch((error: unknown) => {
  killAllNow()
  log(error instanceof Error ? error.message : String(error))
  process.exitCode = 2
})
