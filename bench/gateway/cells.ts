// A cell per target and workload: what wrk runs, with the script that posts the workload's body.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CHAT_PATH, wrkPostScript } from './configs.ts'
import type { GatewayCell } from './report.ts'
import type { Started } from './start-targets.ts'
import { headersFor } from './targets.ts'
import type { Workload } from './workloads.ts'

/** A cell per target and workload, each with its wrk script. */
export function cellsFor(
  dir: string,
  started: readonly Started[],
  workloads: readonly Workload[],
  upstreamPort: number,
  timeoutS: number,
): GatewayCell[] {
  const cells: GatewayCell[] = []
  for (const w of workloads) {
    const bodyFile = join(dir, `${w.name}.json`)
    writeFileSync(bodyFile, w.body)
    for (const { name, server } of started) {
      const script = join(dir, `${name}-${w.name}.lua`)
      writeFileSync(script, wrkPostScript(bodyFile, headersFor(name, w, upstreamPort)))
      cells.push({
        name: `${name}/${w.name}`,
        target: name,
        workload: w,
        server,
        url: `http://127.0.0.1:${server.port}${CHAT_PATH}`,
        script,
        timeoutS,
        c50: [],
        c1: [],
        warmup: [],
        requestsSent: 0,
      })
    }
  }
  return cells
}
