import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, test } from 'node:test'
import { answersEveryRequest, expectedAnswer } from '../../../bench/gateway/answers-probe.ts'
import { workload } from '../../../bench/gateway/workloads.ts'

// bench:gateway loads no target that does not relay the upstream's answers whole: a gateway that
// dropped an event or rewrote a body would be measured doing less than the others.

const chat = workload('chat')
const stream = workload('chat-stream')

/** How the fake gateway spoils the upstream's answer. */
let spoil: (body: string) => string = (body) => body

const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const streamed = req.headers['x-bench-answer'] === 'sse'
    res.setHeader('content-type', streamed ? 'text/event-stream' : 'application/json')
    res.end(spoil(expectedAnswer(streamed ? stream : chat)))
  })
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
after(() => server.close())

const target = {
  port: (server.address() as AddressInfo).port,
  proc: { exited: false, pid: process.pid },
}
const probe = answersEveryRequest([
  { workload: chat, headers: { 'Content-Type': 'application/json' } },
  { workload: stream, headers: { 'Content-Type': 'application/json', 'x-bench-answer': 'sse' } },
])

test("passes a target that relays the upstream's body and every event of its stream", async () => {
  spoil = (body) => body
  assert.equal(await probe(target), undefined)
})

test('refuses a stream that lost one event, and names it', async () => {
  spoil = (body) => body.replace(/data: [^\n]*"word7 "[^\n]*\n\n/, '')
  assert.match(
    (await probe(target)) ?? '',
    /chat-stream.*without 1 of the upstream's events.*word7/,
  )
})

test("refuses a non-streamed body that differs from the upstream's by one byte", async () => {
  spoil = (body) => (body.startsWith('data:') ? body : `${body} `)
  assert.match((await probe(target)) ?? '', /\(chat\) answered 200 but not the upstream's body/)
})
