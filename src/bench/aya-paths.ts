import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The repository (or installed package) root: the nearest package.json named `aya`. */
export function findPackageRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'aya')
          return dir
      } catch {
        // Not ours; keep walking up.
      }
    }
    if (dirname(dir) === dir) throw new Error(`no aya package.json above ${from}`)
  }
}

/** The built CLI that HTTP runs start (`npm run build` makes it). */
export function ayaBinPath(root: string = findPackageRoot()): string {
  return join(root, 'dist', 'bin', 'aya.js')
}
