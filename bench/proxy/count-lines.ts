// Lines in a file (Aya's access log), read as a stream so a large log costs no memory.
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

/** Lines in `path`, or only those that contain `containing`. */
export async function countLines(path: string, containing?: string): Promise<number> {
  let lines = 0
  for await (const line of createInterface({
    input: createReadStream(path),
    crlfDelay: Infinity,
  })) {
    if (containing === undefined || line.includes(containing)) lines++
  }
  return lines
}
