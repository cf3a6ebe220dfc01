import { execFileSync } from 'node:child_process'
import { arch, cpus, platform, totalmem } from 'node:os'

export interface MachineInfo {
  readonly platform: string
  readonly arch: string
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
}

export function machineInfo(): MachineInfo {
  const list = cpus()
  return {
    platform: platform(),
    arch: arch(),
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
  }
}

/** The checked-out commit and whether the tree has changes (read-only git queries), or null. */
export function gitCommit(cwd: string): { readonly sha: string; readonly dirty: boolean } | null {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return {
      sha: git('rev-parse', 'HEAD').trim(),
      dirty: git('status', '--porcelain', '--untracked-files=no').trim() !== '',
    }
  } catch {
    return null
  }
}
