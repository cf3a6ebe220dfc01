// Installs the Debian packages the test suite needs when they are missing (tests start real
// servers, never mocks). Runs as root on CI and developer machines; a no-op when all are present.
import { execSync } from 'node:child_process'

/** binary → Debian package */
const NEEDED = { 'redis-server': 'redis-server', promtool: 'prometheus' }

const missing = Object.entries(NEEDED).filter(([binary]) => {
  try {
    execSync(`command -v ${binary}`, { stdio: 'ignore', shell: '/bin/sh' })
    return false
  } catch {
    return true
  }
})
if (missing.length > 0) {
  const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ')
  process.stderr.write(`pretest: installing ${packages}\n`)
  execSync('apt-get update -qq', { stdio: 'inherit' })
  execSync(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages}`, {
    stdio: 'inherit',
    shell: '/bin/sh',
  })
}
