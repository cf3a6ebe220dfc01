// The requests of the benchmark: an OpenAI chat completion with a ~1 kB conversation, the same
// streamed, and one with a ~32 kB prompt (Aya counts a prompt's tokens and hashes its prefix, so
// its cost grows with the prompt; a plain proxy's barely does).
import { MODEL } from './answers.ts'

export const WORKLOADS = ['chat', 'chat-stream', 'chat-32k'] as const
export type WorkloadName = (typeof WORKLOADS)[number]

export interface Workload {
  readonly name: WorkloadName
  readonly description: string
  readonly streamed: boolean
  /** The JSON body, the same bytes for every request and every target. */
  readonly body: string
}

const VOCABULARY = (
  'the router reads each request once and picks a replica that already holds the prompt prefix ' +
  'in its cache while the queue stays short enough for the first token to arrive on time so ' +
  'every engine keeps its batch full and no client waits longer than its deadline allows'
).split(' ')

/** Deterministic prose of about `chars` characters (words picked by a fixed stride). */
function prose(chars: number, offset: number): string {
  const words: string[] = []
  let length = 0
  for (let i = 0; length < chars; i++) {
    const word = VOCABULARY[(offset + i * 7) % VOCABULARY.length]!
    words.push(word)
    length += word.length + 1
  }
  return words.join(' ')
}

function chatBody(userChars: number, streamed: boolean): string {
  return JSON.stringify({
    model: MODEL,
    messages: [
      { role: 'system', content: `You are a concise assistant. ${prose(220, 3)}` },
      { role: 'user', content: prose(userChars, 11) },
    ],
    max_tokens: 256,
    temperature: 0.7,
    ...(streamed ? { stream: true, stream_options: { include_usage: true } } : {}),
  })
}

export function workload(name: WorkloadName): Workload {
  switch (name) {
    case 'chat':
      return {
        name,
        description: 'chat completion, ~1 kB of messages',
        streamed: false,
        body: chatBody(700, false),
      }
    case 'chat-stream':
      return {
        name,
        description: 'the same, streamed (SSE)',
        streamed: true,
        body: chatBody(700, true),
      }
    case 'chat-32k':
      return {
        name,
        description: 'chat completion, ~32 kB prompt',
        streamed: false,
        body: chatBody(32_000, false),
      }
  }
}
