import { describe, test } from 'node:test'
import { assertTracesPresent } from './shared-traces.ts'

describe('shared traces', () => {
  test('are present beside the checkout, so the trace tests really run', () => {
    assertTracesPresent()
  })
})
