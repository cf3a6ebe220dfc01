import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { loadConfigFile } from '../../../src/config/load.ts'
import { createAdmissionQueue } from '../../../src/resilience/admission-queue.ts'
import { resolvePriority } from '../../../src/resilience/priority-classes.ts'
import { createManualClock } from '../../../src/util/manual-clock.ts'
import { writeTempFile } from '../../helpers/cli.ts'

// Issue 5's priorities block, verbatim, comments included.
const ISSUE_BLOCK = `priorities:
  header: x-priority           # a class name or an integer; higher is served first
  classes: { interactive: 0, batch: -1 }
  default: interactive
  sheddable: negative          # priorities below 0 may be shed under saturation
`

const CONFIG = `listeners:
  - { name: public, port: 0 }
routes:
  - match: { pathPrefix: / }
    upstream: api
upstreams:
  api:
    endpoints: [{ url: "http://127.0.0.1:9001" }]
    admission: {}
${ISSUE_BLOCK}`

describe('issue 5’s priorities block', () => {
  test('loads through the config loader from a file and resolves priorities as the issue says', async () => {
    const config = await loadConfigFile(await writeTempFile('aya.yaml', CONFIG), {})
    const { priorities } = config
    assert.deepEqual(priorities, {
      header: 'x-priority',
      classes: { interactive: 0, batch: -1 },
      default: 'interactive',
      sheddable: 'negative',
    })
    const resolve = (header: string | undefined) => resolvePriority(header, priorities)

    // No header: the default class, interactive (0), never shed.
    assert.deepEqual(resolve(undefined), {
      priority: 0,
      sheddable: false,
      className: 'interactive',
    })
    // A class name.
    assert.deepEqual(resolve('interactive'), resolve(undefined))
    assert.deepEqual(resolve('batch'), { priority: -1, sheddable: true, className: 'batch' })
    // Or an integer: the classes' own levels, and the range they span.
    assert.deepEqual(resolve('0'), resolve('interactive'))
    assert.deepEqual(resolve('-1'), resolve('batch'))
    assert.equal(resolve('7').priority, 0)
    assert.equal(resolve('-9').priority, -1)
    // Negative is sheddable under saturation; 0 and above never is.
    assert.equal(resolve('-1').sheddable, true)
    assert.equal(resolve('0').sheddable, false)

    // Higher is served first: interactive leaves the admission queue before batch queued earlier.
    const queue = createAdmissionQueue<string>({}, { clock: createManualClock() })
    for (const header of ['batch', undefined, '-1', 'interactive']) {
      queue.enqueue({ value: header ?? '(none)', priority: resolve(header).priority })
    }
    const order: string[] = []
    for (let entry = queue.tryAdmit(); entry; entry = queue.tryAdmit()) order.push(entry.value)
    assert.deepEqual(order, ['(none)', 'interactive', 'batch', '-1'])
  })

  test('is the default when the block is left out', async () => {
    const withBlock = await loadConfigFile(await writeTempFile('aya.yaml', CONFIG), {})
    const without = await loadConfigFile(
      await writeTempFile('aya.yaml', CONFIG.replace(ISSUE_BLOCK, '')),
      {},
    )
    assert.deepEqual(without.priorities, withBlock.priorities)
  })
})
