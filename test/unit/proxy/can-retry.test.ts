import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type AttemptHistory, canRetry } from '../../../src/proxy/can-retry.ts'
import { ProxyError } from '../../../src/proxy/errors.ts'

const connectFailed = new ProxyError('LB_ERR_CONNECT_FAILED', {
  source: 'upstream',
  retryable: true,
  sentUpstream: false,
})
const closedUnanswered = new ProxyError('LB_ERR_UPSTREAM_RESET', {
  source: 'upstream',
  retryable: true,
  sentUpstream: true,
})
const firstByteTimeout = new ProxyError('LB_ERR_FIRST_BYTE_TIMEOUT', {
  source: 'upstream',
  sentUpstream: true,
})

const first: AttemptHistory = {
  method: 'GET',
  attempts: 1,
  resendable: true,
  resent: false,
  responding: false,
}

describe('canRetry', () => {
  it('retries a connect failure for any method while attempts are left', () => {
    for (const method of ['GET', 'POST', 'PATCH']) {
      assert.equal(canRetry(connectFailed, { ...first, method }), true, method)
    }
    assert.equal(canRetry(connectFailed, { ...first, attempts: 3 }), false)
  })

  it('sends a request again after its connection closed unanswered only for idempotent methods', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
      assert.equal(canRetry(closedUnanswered, { ...first, method }), true, method)
    }
    for (const method of ['POST', 'PATCH']) {
      assert.equal(canRetry(closedUnanswered, { ...first, method }), false, method)
    }
  })

  it('sends a request again once only, and within the attempts left', () => {
    assert.equal(canRetry(closedUnanswered, { ...first, resent: true }), false)
    assert.equal(canRetry(closedUnanswered, { ...first, attempts: 3 }), false)
    // A connect failure after the resend still moves on to another endpoint.
    assert.equal(canRetry(connectFailed, { ...first, attempts: 2, resent: true }), true)
  })

  it('never retries a timeout, nor anything once the response has begun', () => {
    assert.equal(canRetry(firstByteTimeout, first), false)
    assert.equal(canRetry(connectFailed, { ...first, responding: true }), false)
    assert.equal(canRetry(closedUnanswered, { ...first, responding: true }), false)
  })

  it('sends a streamed body again only after an attempt that never sent it', () => {
    for (const method of ['GET', 'PUT', 'POST']) {
      assert.equal(canRetry(connectFailed, { ...first, method, resendable: false }), true, method)
      assert.equal(
        canRetry(closedUnanswered, { ...first, method, resendable: false }),
        false,
        method,
      )
    }
  })
})
