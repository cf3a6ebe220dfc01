import assert from 'node:assert/strict'
import { ConfigError } from '../../src/config/config-error.ts'
import { parseConfigObject } from '../../src/config/load.ts'

/**
 * The issues, one a line, that refuse a config: `config` is a raw config object to parse, or a
 * function that loads one (from YAML text, say). Fails the test if the config is accepted, or
 * refused with anything but a ConfigError.
 */
export function configIssuesOf(config: unknown): string[] {
  try {
    if (typeof config === 'function') config()
    else parseConfigObject(config, {})
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    return error.message.split('\n')
  }
  assert.fail('expected the config to be refused')
}
