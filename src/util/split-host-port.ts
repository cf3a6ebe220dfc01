/**
 * A Host value (already checked to be a valid host) as its name and its port, `''` when it has
 * none. An IPv6 literal keeps its brackets: `[::1]:8080` is `['[::1]', '8080']`.
 */
export function splitHostPort(host: string): [string, string] {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return [host.slice(0, end + 1), host.slice(end + 2)]
  }
  const colon = host.lastIndexOf(':')
  return colon === -1 ? [host, ''] : [host.slice(0, colon), host.slice(colon + 1)]
}
