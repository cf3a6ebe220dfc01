// After the run, Aya's own request counts against each other and against wrk's.
import { countLines } from '../proxy/count-lines.ts'
import { ayaRequestsTotal } from '../proxy/servers.ts'
import { stop } from '../proxy/system.ts'
import type { GatewayCell } from './report.ts'
import type { Started } from './start-targets.ts'

/**
 * Aya's own counts against wrk's: metrics first (Aya still up), then Aya is stopped so that its
 * asynchronous access log is flushed before its lines are counted.
 */
export async function ayaChecks(started: readonly Started[], cells: readonly GatewayCell[]) {
  const checks = []
  for (const { name, server } of started) {
    // Only Aya has an admin listener.
    if (server.adminPort === undefined || !server.accessLog) continue
    const metricsRequestsTotal = await ayaRequestsTotal(server.adminPort)
    await stop(server.proc, 15_000)
    const accessLogLines = await countLines(server.accessLog, '"msg":"access"')
    checks.push({
      target: name,
      accessLogLines,
      metricsRequestsTotal,
      // wrk counts only requests completed inside its windows; Aya also served the probes.
      wrkRequestsCompleted: cells
        .filter((c) => c.server === server)
        .reduce((n, c) => n + c.requestsSent, 0),
      logMatchesMetrics: accessLogLines === metricsRequestsTotal,
    })
  }
  return checks
}
