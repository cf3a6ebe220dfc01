import type { ServerResponse } from 'node:http'

/**
 * Calls `gone` once if the client goes away before the response has finished; returns the
 * unsubscribe. A response's own `close` is not enough: Node never emits it for a response queued
 * behind another on a pipelined connection, so a client that sends two streams and hangs up
 * would leave the second streaming from the engine. The socket's `close` covers that.
 */
export function whenClientGone(res: ServerResponse, gone: () => void): () => void {
  const socket = res.socket ?? res.req.socket
  let done = false
  const onClose = () => {
    if (done || res.writableFinished) return
    done = true
    unsubscribe()
    gone()
  }
  const unsubscribe = () => {
    res.off('close', onClose)
    socket?.off('close', onClose)
  }
  res.once('close', onClose)
  socket?.once('close', onClose)
  return () => {
    done = true
    unsubscribe()
  }
}
