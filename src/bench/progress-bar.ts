import type { RunProgress } from './policy-run.ts'

export interface ProgressStream {
  write(text: string): unknown
  readonly isTTY?: boolean
}

export interface ProgressBar {
  update(progress: RunProgress): void
  /** Ends the bar's line. */
  done(): void
}

const WIDTH = 30

/**
 * A one-line progress bar on stderr: redrawn in place on a terminal (at most 10 times a second),
 * and as a line per quarter otherwise, so logs stay short.
 */
export function createProgressBar(stream: ProgressStream, label: string): ProgressBar {
  const isTty = stream.isTTY === true
  let lastDrawMs = 0
  let lastQuarter = -1
  let last: RunProgress | undefined
  const render = (p: RunProgress): string => {
    const fraction = p.total === 0 ? 1 : p.done / p.total
    const filled = Math.round(fraction * WIDTH)
    const bar = `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}`
    return `${label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${p.done}/${p.total} done, ${p.sent} sent, ${p.failed} failed`
  }
  return {
    update(p) {
      last = p
      if (isTty) {
        const nowMs = performance.now()
        if (nowMs - lastDrawMs < 100 && p.done < p.total) return
        lastDrawMs = nowMs
        stream.write(`\r${render(p)}\u001b[K`)
        return
      }
      const quarter = p.total === 0 ? 4 : Math.floor((4 * p.done) / p.total)
      if (quarter > lastQuarter) {
        lastQuarter = quarter
        stream.write(`${render(p)}\n`)
      }
    },
    done() {
      if (isTty && last) stream.write(`\r${render(last)}\u001b[K\n`)
    },
  }
}
