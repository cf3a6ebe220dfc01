import assert from 'node:assert/strict'
import Anthropic from '@anthropic-ai/sdk'

/**
 * Asks Anthropic's own client, against `baseURL`, for a message from `model`, which the gateway
 * does not know, and returns the 404 it raises (the SDK keeps the body and headers on it).
 */
export async function anthropicNotFound(
  baseURL: string,
  model: string,
): Promise<InstanceType<typeof Anthropic.NotFoundError>> {
  const client = new Anthropic({ baseURL, apiKey: 'unused', maxRetries: 0 })
  try {
    await client.messages.create({
      model,
      max_tokens: 5,
      messages: [{ role: 'user', content: 'Hi' }],
    })
  } catch (error) {
    assert.ok(error instanceof Anthropic.NotFoundError, String(error))
    return error
  }
  assert.fail(`${model} was answered`)
}
