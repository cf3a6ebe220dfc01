/** A request target's path: everything before the query string. */
export function pathOf(target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? target : target.slice(0, queryAt)
}

/** A request target's query string with its `?`, or '' when it has none. */
export function queryOf(target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? '' : target.slice(queryAt)
}
