import { request } from 'undici'

/**
 * Posts a chat completion for model `llama` whose prompt is `words` words, led by a random number
 * so no two share a prefix, asking for 4 tokens.
 */
export const postLoremChat = (
  url: string,
  words: number,
  options: { readonly stream?: boolean; readonly headers?: Record<string, string> } = {},
) =>
  request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({
      model: 'llama',
      max_tokens: 4,
      ...(options.stream === undefined ? {} : { stream: options.stream }),
      messages: [{ role: 'user', content: `${Math.random()} ${'lorem '.repeat(words)}` }],
    }),
  })
