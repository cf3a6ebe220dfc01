import type { HeaderEdits, RedirectConfig } from '../config/schema.ts'
import type { Random } from '../util/random.ts'
import { pathOf, queryOf } from '../util/request-target.ts'
import { splitHostPort } from '../util/split-host-port.ts'

/** Replaces the matched prefix with the configured one, keeping the rest of the path and query. */
export function rewritePrefix(url: string, matchedPrefix: string, replacement: string): string {
  if (!url.startsWith(matchedPrefix)) return url
  const rest = url.slice(matchedPrefix.length)
  let rewritten: string
  if (replacement.endsWith('/') && rest.startsWith('/')) rewritten = replacement + rest.slice(1)
  else if (
    !replacement.endsWith('/') &&
    rest !== '' &&
    !rest.startsWith('/') &&
    !rest.startsWith('?')
  ) {
    rewritten = `${replacement}/${rest}`
  } else rewritten = replacement + rest
  // One leading slash: `//evil.com/x` reads as a host to anything that parses it as a URL.
  return rewritten.replace(/^\/{2,}/, '/') || '/'
}

/** Builds the Location of a redirect from the request and the route's redirect action. */
export function redirectLocation(
  redirect: RedirectConfig,
  request: { readonly proto: string; readonly host: string; readonly url: string },
  matchedPrefix: string | undefined,
): string {
  const path = pathOf(request.url)
  const query = redirect.stripQuery ? '' : queryOf(request.url)
  let nextPath = path
  if (redirect.path !== undefined) nextPath = redirect.path
  else if (redirect.pathPrefix !== undefined && matchedPrefix !== undefined) {
    nextPath = rewritePrefix(path, matchedPrefix, redirect.pathPrefix)
  }
  const scheme = redirect.scheme ?? request.proto
  const [hostName, hostPort] = splitHostPort(request.host)
  const host = redirect.host ?? hostName
  let port = redirect.port !== undefined ? String(redirect.port) : redirect.scheme ? '' : hostPort
  if ((scheme === 'https' && port === '443') || (scheme === 'http' && port === '80')) port = ''
  return `${scheme}://${host}${port ? `:${port}` : ''}${nextPath}${query}`
}

/** Applies remove, then set, then add (append) to a header object in place. */
export function applyHeaderEdits(
  headers: Record<string, string | string[] | number | undefined>,
  edits: HeaderEdits | undefined,
): void {
  if (!edits) return
  for (const name of edits.remove) delete headers[name.toLowerCase()]
  for (const [name, value] of Object.entries(edits.set)) headers[name.toLowerCase()] = value
  for (const [name, value] of Object.entries(edits.add)) {
    const key = name.toLowerCase()
    const existing = headers[key]
    if (existing === undefined) headers[key] = value
    else if (Array.isArray(existing)) headers[key] = [...existing, value]
    else headers[key] = [String(existing), value]
  }
}

/** Weighted choice between upstream groups (canary splits). */
export function createSplitChooser(
  entries: readonly { readonly upstream: string; readonly weight: number }[],
  random: Random,
): () => string {
  const total = entries.reduce((sum, entry) => sum + entry.weight, 0)
  return () => {
    let r = random() * total
    for (const entry of entries) {
      r -= entry.weight
      if (r < 0) return entry.upstream
    }
    return entries[entries.length - 1]!.upstream
  }
}
