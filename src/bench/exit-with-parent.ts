/**
 * Preloaded into every Node process the bench starts (`node --import <this> ...`): once the bench
 * is gone without closing it (SIGKILL, a crash), the process is re-parented, and it then stops
 * itself with SIGTERM, as the bench would have. Without it an orphaned `aya sim` or `aya start`
 * serves on forever, nobody left to read its output or close it. The bench's pid is written into
 * the source, not read at preload: the bench may already be gone by then.
 */
export function exitWithParentImport(parentPid: number = process.pid): string {
  const source = `const timer = setInterval(() => {
  if (process.ppid === ${parentPid}) return
  clearInterval(timer)
  process.kill(process.pid, 'SIGTERM')
}, 500).unref()
`
  return `data:text/javascript,${encodeURIComponent(source)}`
}
