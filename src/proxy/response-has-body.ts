/**
 * Whether a response has a body to frame (RFC 9112 §6.3): not one to a HEAD, nor a 204 or 304,
 * which end with their head whatever their headers say.
 */
export function responseHasBody(method: string | undefined, statusCode: number): boolean {
  return method !== 'HEAD' && statusCode !== 204 && statusCode !== 304
}
