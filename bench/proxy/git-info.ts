// The commit a run measured.
import { exec } from './system.ts'

/**
 * The commit measured. BENCH_COMMIT names it when the run is made from an export of a commit
 * (`git archive`), which has no .git, e.g. while others have uncommitted changes in the checkout.
 */
export async function gitInfo() {
  const exported = process.env.BENCH_COMMIT
  if (exported)
    return { commit: exported, srcDirty: false, from: 'BENCH_COMMIT (git archive export)' }
  const head = await exec('git', ['rev-parse', '--short', 'HEAD'])
  // GIT_OPTIONAL_LOCKS=0 keeps `git status` from refreshing the index (no git state changes).
  process.env.GIT_OPTIONAL_LOCKS = '0'
  const status = await exec('git', ['status', '--porcelain', '--untracked-files=no', 'src', 'bin'])
  return {
    commit: head.code === 0 ? head.stdout.trim() : undefined,
    srcDirty: status.code === 0 ? status.stdout.trim() !== '' : undefined,
  }
}
