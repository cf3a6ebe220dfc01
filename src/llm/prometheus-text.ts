/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const SAMPLE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g

/** Parses the text format leniently: comments and unparsable lines are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = SAMPLE.exec(line)
    if (!match) continue
    const value = Number(match[3])
    if (Number.isNaN(value)) continue
    const labels: Record<string, string> = {}
    if (match[2]) {
      for (const label of match[2].matchAll(LABEL))
        labels[label[1]!] = label[2]!.replace(/\\(.)/g, '$1')
    }
    samples.push({ name: match[1]!, labels, value })
  }
  return samples
}
