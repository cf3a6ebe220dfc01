// The machine a run was made on, for the JSON summary and docs/benchmarks.md.
import { existsSync, readFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { CLK_TCK, firstLine } from './system.ts'

export function machineInfo() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  return {
    nproc: Number(firstLine('nproc', [])),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model,
    kernel: release(),
    memTotalMb: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    nginx: firstLine('nginx', ['-v']),
    haproxy: firstLine('haproxy', ['-v']),
    wrk: firstLine('wrk', ['-v']),
    clkTck: CLK_TCK,
    loadavgAtStart: loadavg(),
  }
}
