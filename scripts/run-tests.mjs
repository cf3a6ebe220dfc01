// Runs every test file under test/ with node's test runner. Node 20 has no glob for --test, so
// the file list is gathered here; extra arguments narrow it (substring match on the path).
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const filters = process.argv.slice(2)
const files = []
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (
      name.endsWith('.test.ts') &&
      (filters.length === 0 || filters.some((f) => path.includes(f)))
    )
      files.push(path)
  }
}
walk('test')
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
