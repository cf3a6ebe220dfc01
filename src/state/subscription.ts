/** One `subscribe` call's handler, switched off by its unsubscribe or by close. */
export interface Subscription {
  readonly handler: (message: string) => void
  active: boolean
}

/**
 * Hands a message to each subscription still active now: checked at delivery, so an unsubscribe
 * (or close) between publish and delivery wins. A handler that throws is reported, and the
 * others still get the message.
 */
export function deliver(
  subscriptions: readonly Subscription[],
  channel: string,
  message: string,
  onHandlerError: (error: unknown, channel: string) => void,
): void {
  for (const subscription of subscriptions) {
    if (!subscription.active) continue
    try {
      subscription.handler(message)
    } catch (error) {
      onHandlerError(error, channel)
    }
  }
}
