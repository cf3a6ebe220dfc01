import type { ServerResponse } from 'node:http'

/**
 * Calls `gone` once if the client goes away before the response has finished; returns the
 * unsubscribe. A response's own `close` is not enough: Node never emits it for a response queued
 * behind another on a pipelined connection, so a client that sends two streams and hangs up
 * would leave the second streaming from the engine. The socket's `close` covers that.
 *
 * A client that is gone already is told at once, synchronously: its `close` was emitted before
 * anyone listened (while a gzip body was inflating, say), and is not emitted again. Waiting for it
 * would keep the request in the admission queue until its deadline, and then send it upstream.
 */
export function whenClientGone(res: ServerResponse, gone: () => void): () => void {
  const socket = res.socket ?? res.req.socket
  if (!res.writableFinished && (res.destroyed || socket?.destroyed === true)) {
    gone()
    return () => {}
  }
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
