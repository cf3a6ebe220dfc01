import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError } from '../../../src/config/config-error.ts'
import { parseConfigObject, parseConfigText } from '../../../src/config/load.ts'
import { configIssuesOf } from '../../helpers/config-issues.ts'

const base = () => ({
  listeners: [{ name: 'public', address: '127.0.0.1', port: 8080 }],
  routes: [{ match: { pathPrefix: '/' }, upstream: 'api' }],
  upstreams: {
    api: {
      endpoints: [{ url: 'http://127.0.0.1:9001', weight: 3 }, { url: 'http://127.0.0.1:9002' }],
    },
  },
})

describe('config loading', () => {
  test('applies defaults: least-request, 16 MiB body limit, timeouts, admin on 9901', () => {
    const config = parseConfigObject(base(), {})
    assert.equal(config.upstreams.api!.policy, 'least-request')
    assert.equal(config.listeners[0]!.maxBodyBytes, 16 * 1024 * 1024)
    assert.deepEqual(config.upstreams.api!.timeouts, {
      connectMs: 2000,
      firstByteMs: 30000,
      idleMs: 60000,
      completionMs: 600000,
    })
    assert.deepEqual(config.admin, { address: '127.0.0.1', port: 9901 })
    assert.equal(config.upstreams.api!.endpoints[1]!.weight, 1)
  })

  test('freezes the config so nothing mutates it after validation', () => {
    const config = parseConfigObject(base(), {})
    assert.ok(Object.isFrozen(config))
    assert.ok(Object.isFrozen(config.upstreams.api!.endpoints[0]))
  })

  test('names the path and the bad value', () => {
    const raw = base()
    raw.upstreams.api.endpoints[1] = { url: 'http://127.0.0.1:9002', weight: -3 }
    assert.deepEqual(configIssuesOf(raw), [
      'upstreams.api.endpoints[1].weight: expected a positive integer, got -3',
    ])
  })

  test('keeps state in memory by default, and takes a redis store with its url', () => {
    assert.deepEqual(parseConfigObject(base(), {}).state, {
      store: 'memory',
      keyPrefix: 'aya:',
      commandTimeoutMs: 1000,
    })
    const redis = parseConfigObject(
      { ...base(), state: { store: 'redis', url: 'unix:///run/redis.sock' } },
      {},
    )
    assert.equal(redis.state.url, 'unix:///run/redis.sock')
  })

  test('names the state path of a redis store without a url, or with a url of another scheme', () => {
    assert.deepEqual(configIssuesOf({ ...base(), state: { store: 'redis' } }), [
      'state.url: store redis needs a url, but it is missing',
    ])
    const issuesOf = (url: string) => configIssuesOf({ ...base(), state: { store: 'redis', url } })
    assert.deepEqual(issuesOf('http://cache:6379'), [
      'state.url: expected a redis://, rediss:// or unix:// URL, got "http://cache:6379"',
    ])
    assert.deepEqual(issuesOf('redis://cache:6379/zero'), [
      'state.url: bad database number "zero": expected a whole number, got "redis://cache:6379/zero"',
    ])
  })

  test('refuses a state url whose parts would be left unread, rather than connect elsewhere', () => {
    const issuesOf = (url: string) => configIssuesOf({ ...base(), state: { store: 'redis', url } })
    // Read as host `run` and socket `/redis.sock`.
    assert.match(issuesOf('unix://run/redis.sock')[0]!, /takes an absolute path/)
    assert.match(issuesOf('redis://cache?family=6')[0]!, /query parameter "family" is not read/)
    assert.match(issuesOf('redis://cache/1?db=2')[0]!, /database 1 in its path and 2 in its query/)
    assert.match(issuesOf('redis://:50%off@cache')[0]!, /password is not percent-encoded/)
    const url = 'unix:///run/redis.sock?db=2'
    assert.equal(
      parseConfigObject({ ...base(), state: { store: 'redis', url } }, {}).state.url,
      url,
    )
  })

  test('refuses a drain timeout past what a Node timer can wait, which would cut requests at once', () => {
    const issues = configIssuesOf({ ...base(), shutdown: { drainTimeoutMs: 3_000_000_000 } })
    assert.equal(issues.length, 1)
    assert.match(issues[0]!, /^shutdown\.drainTimeoutMs: expected at most 2147483647 milliseconds/)
  })

  test('gives a value that fails several checks one message, the bound for an integer past 2^53', () => {
    const raw = {
      ...base(),
      listeners: [{ name: 'public', port: 1e20 }],
      upstreams: {
        api: {
          endpoints: [
            { url: 'http://127.0.0.1:9001', weight: 1e20 },
            { url: 'http://127.0.0.1:9002', weight: -1e20 },
          ],
          admission: { maxBypassMs: 1e20 },
        },
      },
      shutdown: { drainTimeoutMs: 1e20 },
    }
    assert.deepEqual(configIssuesOf(raw), [
      'listeners[0].port: expected a port number (0-65535), got 100000000000000000000',
      'upstreams.api.endpoints[0].weight: expected a weight of at most 1000, got 100000000000000000000',
      'upstreams.api.endpoints[1].weight: expected a positive integer, got -100000000000000000000',
      'upstreams.api.admission.maxBypassMs: expected at most 2147483647 milliseconds (about 24.8 days), got 100000000000000000000',
      'shutdown.drainTimeoutMs: expected at most 2147483647 milliseconds (about 24.8 days), got 100000000000000000000',
    ])
  })

  test('refuses a listener or admin address that is neither an IP nor a host name, naming it', () => {
    const withAddress = (address: string) => ({
      ...base(),
      listeners: [{ name: 'public', address, port: 8080 }],
      admin: { address, port: 9901 },
    })
    const expected = 'expected an IP address (IPv6 without brackets), localhost or a host name'
    for (const address of ['not an ip', '', '[::1]', 'host:8080', '10.0.0.256', '-a.example']) {
      assert.deepEqual(
        configIssuesOf(withAddress(address)),
        [
          `listeners[0].address: ${expected}, got ${JSON.stringify(address)}`,
          `admin.address: ${expected}, got ${JSON.stringify(address)}`,
        ],
        address,
      )
    }
    for (const address of ['0.0.0.0', '::', '::1', 'fe80::1%lo0', 'localhost', 'aya-1.internal.']) {
      const config = parseConfigObject(withAddress(address), {})
      assert.equal(config.listeners[0]!.address, address)
      assert.equal(config.admin.address, address)
    }
  })

  test('refuses a redirect host or path that would split the Location header', () => {
    const route = (redirect: Record<string, unknown>) => ({
      ...base(),
      routes: [{ match: { pathPrefix: '/' }, redirect }],
    })
    const issues = [
      ...configIssuesOf(route({ host: 'a.example\r\nx: y' })),
      ...configIssuesOf(route({ path: '/x\r\nSet-Cookie: a=b' })),
    ]
    assert.match(issues[0]!, /^routes\[0\]\.redirect\.host: expected a host name/)
    assert.match(issues[1]!, /^routes\[0\]\.redirect\.path: must not contain control characters/)
  })

  test('refuses a header value with a control character Node would refuse at request time, and keeps a tab', () => {
    const withHeader = (value: string) => ({
      ...base(),
      routes: [
        { match: { pathPrefix: '/' }, upstream: 'api', requestHeaders: { set: { 'x-a': value } } },
      ],
    })
    assert.match(
      configIssuesOf(withHeader('a\u0001b'))[0]!,
      /^routes\[0\]\.requestHeaders\.set\.x-a: header values must not contain control characters/,
    )
    const config = parseConfigObject(withHeader('a\tb'), {})
    assert.equal(config.routes[0]!.requestHeaders?.set['x-a'], 'a\tb')
  })

  test('reports every problem at once', () => {
    const raw = {
      ...base(),
      listeners: [
        { name: 'a', address: '127.0.0.1', port: 'eighty' },
        { name: 'b', address: '127.0.0.1', port: 8080 },
      ],
      bogus: true,
    }
    const issues = configIssuesOf(raw)
    assert.ok(
      issues.some(
        (i) =>
          i.startsWith('listeners[0].port: expected a port number') && i.endsWith('got "eighty"'),
      ),
    )
    assert.ok(issues.includes('unknown key "bogus"'))
  })

  test('rejects an unknown policy and lists the known ones', () => {
    const raw = base() as ReturnType<typeof base> & { upstreams: { api: { policy?: string } } }
    raw.upstreams.api.policy = 'fastest-please'
    const [issue] = configIssuesOf(raw)
    assert.match(
      issue!,
      /^upstreams\.api\.policy: unknown policy "fastest-please" \(expected one of .*round-robin/,
    )
  })

  test('rejects a duplicate listener port', () => {
    const raw = {
      ...base(),
      listeners: [
        { name: 'a', port: 8080 },
        { name: 'b', port: 8080 },
      ],
    }
    assert.deepEqual(configIssuesOf(raw), [
      'listeners[1].port: duplicate listener port 8080 on 127.0.0.1 (also listeners[0])',
    ])
  })

  test('rejects two listeners on one port where a wildcard address takes it on the other too', () => {
    const listeners = (...addresses: string[]) => ({
      ...base(),
      listeners: addresses.map((address, i) => ({ name: `l${i}`, address, port: 8080 })),
    })
    const everyAddress = '`::` takes that port on every address'
    const everyIpv4 = '0.0.0.0 takes that port on every IPv4 address'
    const hostName = 'a host name resolves only when bound, maybe to the other address'
    for (const [a, b, why] of [
      ['0.0.0.0', '127.0.0.1', everyIpv4],
      ['127.0.0.1', '0.0.0.0', everyIpv4],
      ['::', '127.0.0.1', everyAddress],
      ['0.0.0.0', '::', everyAddress],
      ['::', '::1', everyAddress],
      ['::', 'localhost', everyAddress],
      ['localhost', '127.0.0.1', hostName],
      ['0.0.0.0', 'localhost', hostName],
      ['::ffff:127.0.0.2', '0.0.0.0', everyIpv4],
    ] as const) {
      assert.deepEqual(
        configIssuesOf(listeners(a, b)),
        [`listeners[1].port: port 8080 on ${b} is also bound by listeners[0] on ${a}: ${why}`],
        `${a} ${b}`,
      )
    }
    // An IPv4-mapped address is its IPv4 address.
    assert.deepEqual(configIssuesOf(listeners('127.0.0.1', '::ffff:7f00:1')), [
      'listeners[1].port: duplicate listener port 8080 on ::ffff:7f00:1 (also listeners[0])',
    ])
    // One address however it is spelt.
    assert.deepEqual(configIssuesOf(listeners('::', '0::0')), [
      'listeners[1].port: duplicate listener port 8080 on 0::0 (also listeners[0])',
    ])
    // Each of these pairs binds: other addresses, or an IPv4 wildcard beside an IPv6 address.
    for (const pair of [
      ['127.0.0.1', '127.0.0.2'],
      ['0.0.0.0', '::1'],
      ['::1', '127.0.0.1'],
    ]) {
      assert.doesNotThrow(() => parseConfigObject(listeners(...pair), {}), pair.join(' '))
    }
  })

  test('refuses a listener on the admin port only where the two could not both bind', () => {
    const withAdmin = (listenerAddress: string, adminAddress: string) => ({
      ...base(),
      listeners: [{ name: 'public', address: listenerAddress, port: 9901 }],
      admin: { address: adminAddress, port: 9901 },
    })
    for (const [listener, admin] of [
      ['127.0.0.1', '127.0.0.1'],
      ['0.0.0.0', '127.0.0.1'],
      ['127.0.0.1', '::'],
      ['localhost', '127.0.0.1'],
    ] as const) {
      assert.deepEqual(
        configIssuesOf(withAdmin(listener, admin)),
        [`listeners[0].port: port 9901 is also the admin port (admin on ${admin})`],
        `${listener} ${admin}`,
      )
    }
    assert.doesNotThrow(() => parseConfigObject(withAdmin('127.0.0.1', '127.0.0.2'), {}))
  })

  test('rejects a route to a missing upstream', () => {
    const raw = { ...base(), routes: [{ match: { pathPrefix: '/' }, upstream: 'nope' }] }
    assert.deepEqual(configIssuesOf(raw), [
      'routes[0].upstream: unknown upstream "nope" (known: api)',
    ])
  })

  test('refuses a hashKey on a policy that ignores it, and asks consistent-hash for one', () => {
    const withPolicy = (policy: string, hashKey?: unknown) => {
      const raw = base() as ReturnType<typeof base> & {
        upstreams: { api: Record<string, unknown> }
      }
      raw.upstreams.api.policy = policy
      if (hashKey !== undefined) raw.upstreams.api.hashKey = hashKey
      return raw
    }
    assert.deepEqual(configIssuesOf(withPolicy('round-robin', { header: 'x-user' })), [
      'upstreams.api.hashKey: policy round-robin does not use a hashKey (consistent-hash and consistent-hash-session do)',
    ])
    assert.deepEqual(configIssuesOf(withPolicy('consistent-hash')), [
      'upstreams.api.hashKey: policy consistent-hash needs a hashKey selector, e.g. { header: x-user }',
    ])
    for (const policy of ['consistent-hash', 'consistent-hash-session']) {
      const config = parseConfigObject(withPolicy(policy, { header: 'x-user' }), {})
      assert.deepEqual(config.upstreams.api!.hashKey, { header: 'x-user' })
    }
  })

  test('validates policyOptions against the chosen policy', () => {
    const raw = base() as ReturnType<typeof base> & { upstreams: { api: Record<string, unknown> } }
    raw.upstreams.api.policy = 'round-robin'
    raw.upstreams.api.policyOptions = { surprise: 1 }
    const [issue] = configIssuesOf(raw)
    assert.match(issue!, /^upstreams\.api\.policyOptions: unknown key/)
  })

  test('refuses an aya minAffinityBlocks past maxPrefixBlocks, where no prompt could be matched', () => {
    const raw = base() as ReturnType<typeof base> & { upstreams: { api: Record<string, unknown> } }
    raw.upstreams.api.policy = 'aya'
    raw.upstreams.api.policyOptions = { maxPrefixBlocks: 64, minAffinityBlocks: 65 }
    assert.deepEqual(configIssuesOf(raw), [
      'upstreams.api.policyOptions.minAffinityBlocks: expected at most maxPrefixBlocks (64): no prompt is hashed past it, so none would ever be matched, got 65',
    ])
    raw.upstreams.api.policyOptions = { maxPrefixBlocks: 64, minAffinityBlocks: 64 }
    const options = parseConfigObject(raw, {}).upstreams.api!.policyOptions
    assert.equal(options.minAffinityBlocks, 64)
  })

  test('refuses a second deployment of a model, naming its path and value', () => {
    const raw = {
      ...base(),
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      upstreams: { ...base().upstreams, backup: { endpoints: [{ url: 'http://127.0.0.1:9003' }] } },
      models: {
        llama: {
          deployments: [{ upstream: 'api' }, { upstream: 'backup', model: 'llama-3.1-8b' }],
        },
      },
    }
    assert.deepEqual(configIssuesOf(raw), [
      'models.llama.deployments[1]: only one deployment per model is supported for now (fallbacks and splits are not yet implemented), got {"upstream":"backup","model":"llama-3.1-8b"}',
    ])
    raw.models.llama.deployments.pop()
    assert.equal(parseConfigObject(raw, {}).models.llama!.deployments.length, 1)
  })

  test('refuses a model named "", which no request can ask for, naming its key', () => {
    const raw = {
      ...base(),
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: { '': { deployments: [{ upstream: 'api' }] } },
    }
    assert.deepEqual(configIssuesOf(raw), ['models[""]: expected a model name as the key, got ""'])
  })

  test('refuses a model name, alias or LoRA adapter longer than a request may name, naming its path', () => {
    const long = 'm'.repeat(257)
    const shown = `"${'m'.repeat(56)}...`
    const raw = {
      ...base(),
      routes: [{ match: { pathPrefix: '/v1' }, gateway: 'models' }],
      models: {
        [long]: { deployments: [{ upstream: 'api' }] },
        llama: { aliases: [long.slice(1), `${long}x`], deployments: [{ upstream: 'api' }] },
        [`${long}*`]: { loras: [`${long}y`], deployments: [{ upstream: 'api' }] },
      },
    }
    const wording = 'expected at most 256 characters, the longest model name a request may send'
    assert.deepEqual(configIssuesOf(raw), [
      `models.${long}: ${wording}, got ${shown} (257 characters)`,
      `models.llama.aliases[1]: ${wording}, got ${shown} (258 characters)`,
      `models["${long}*"]: ${wording}, got ${shown} (258 characters)`,
      `models["${long}*"].loras[0]: ${wording}, got ${shown} (258 characters)`,
    ])
    // At the bound, and a wildcard whose fixed part is within it, are kept.
    const atBound = {
      ...raw,
      models: {
        [long.slice(1)]: { deployments: [{ upstream: 'api' }] },
        [`${long.slice(1)}*`]: { deployments: [{ upstream: 'api' }] },
      },
    }
    assert.doesNotThrow(() => parseConfigObject(atBound, {}))
  })

  test('says an empty config is empty rather than listing each missing section', () => {
    for (const text of ['', '\n  \n', '# listeners: later\n', 'null\n']) {
      assert.deepEqual(
        configIssuesOf(() => parseConfigText(text, {}, 'aya.yaml')),
        ['aya.yaml is empty: it needs listeners, routes and upstreams'],
        JSON.stringify(text),
      )
    }
  })

  test('says a config that is a scalar or a list is not the mapping it must be', () => {
    for (const [text, got] of [
      ['hello\n', 'a scalar: "hello"'],
      ['8080\n', 'a scalar: 8080'],
      ['- listeners\n- routes\n', 'a list: ["listeners","routes"]'],
    ] as const) {
      assert.deepEqual(
        configIssuesOf(() => parseConfigText(text, {}, 'aya.yaml')),
        [
          `expected a mapping with listeners, routes and upstreams at the top of the config, got ${got}`,
        ],
        text,
      )
    }
  })

  test('reports YAML syntax errors', () => {
    assert.throws(() => parseConfigText('listeners: [\n', {}), ConfigError)
  })

  test('names the line of an alias with no anchor before it', () => {
    const text = `listeners: &l [{ name: public, port: 8080 }]
routes:
  - { match: { pathPrefix: / }, upstream: api, timeouts: *t }
upstreams: { api: { endpoints: [{ url: "http://127.0.0.1:9001" }] } }
`
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text, {})),
      ['unknown alias *t at line 3, column 58: no &t anchor before it'],
    )
  })

  test('names a key that YAML reads as a number, null, a boolean or a list, which would be renamed', () => {
    const text = `listeners: [{ name: public, port: 8080 }]
routes: [{ gateway: models }]
upstreams: { api: { endpoints: [{ url: "http://127.0.0.1:9001" }] } }
models:
  1.10:
    deployments: [{ upstream: api }]
  ~:
    deployments: [{ upstream: api }]
  True:
    deployments: [{ upstream: api }]
  ? [a, b]
  : deployments: [{ upstream: api }]
  "2.0":
    deployments: [{ upstream: api }]
  8080:
    deployments: [{ upstream: api }]
`
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text, {})),
      [
        'key 1.10 at line 5, column 3 is read as the number 1.1: quote it ("1.10") to keep it as written',
        'key ~ at line 7, column 3 is read as null, an empty key: quote it ("~") to keep it as written',
        'key True at line 9, column 3 is read as the boolean true: quote it ("True") to keep it as written',
        'the key at line 11, column 5 is a list or mapping: a key must be a name',
      ],
    )
    // Quoted, or a number that reads back as written, a key is the name it looks like.
    const kept = parseConfigText(
      text.slice(0, text.indexOf('  1.10:')) + text.slice(text.indexOf('  "2.0":')),
      {},
    )
    assert.deepEqual(Object.keys(kept.models).sort(), ['2.0', '8080'])
  })

  test('says a second YAML document is one too many, in the user’s terms, with its line', () => {
    const [first] = configIssuesOf(() => parseConfigText('listeners: []\n---\nroutes: []\n', {}))
    assert.equal(
      first,
      'a config file holds one YAML document, but another one starts at line 2, column 1:',
    )
  })

  test('refuses a document whose aliases expand past the limit with a ConfigError', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
    for (let i = 1; i < 9; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      )
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(lines.join('\n'), {})),
      ['Excessive alias count indicates a resource exhaustion attack'],
    )
  })

  test('names an infinite or NaN number as such, not as null', () => {
    const text = (value: string) => `listeners: [{ name: public, port: 8080 }]
routes: [{ match: { pathPrefix: / }, upstream: api }]
upstreams: { api: { endpoints: [{ url: "http://127.0.0.1:9001" }] } }
shutdown: { drainTimeoutMs: ${value} }
`
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text('.inf'), {})),
      ['shutdown.drainTimeoutMs: expected a positive integer of milliseconds, got Infinity'],
    )
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text('.nan'), {})),
      ['shutdown.drainTimeoutMs: expected a positive integer of milliseconds, got NaN'],
    )
  })

  test('names an infinite or NaN number inside a refused object as such, not as null', () => {
    const text = `listeners: [{ name: public, port: 8080 }]
routes: [{ match: { pathPrefix: / }, upstream: api }]
upstreams:
  api:
    engineMetrics: { scrapeIntervalMs: .inf, staleAfterMs: -.inf }
    endpoints: [{ url: "http://127.0.0.1:9001" }]
`
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text, {})),
      [
        'upstreams.api.engineMetrics: expected false or { scrapeIntervalMs, staleAfterMs }, got {"scrapeIntervalMs":Infinity,"staleAfterMs":-Infinity}',
      ],
    )
  })

  test('names a bad header-name key, not the value under it, in every map keyed by header name', () => {
    const route = {
      match: { pathPrefix: '/', headers: { 'x tenant': 'a' } },
      upstream: 'api',
      requestHeaders: { set: { 'x:a': 'value-a' }, add: { '': 'value-b' } },
      responseHeaders: { set: { 'x(b)': 'value-c' } },
    }
    assert.deepEqual(configIssuesOf({ ...base(), routes: [route] }), [
      'routes[0].match.headers["x tenant"]: expected a header name as the key, got "x tenant"',
      'routes[0].requestHeaders.set["x:a"]: expected a header name as the key, got "x:a"',
      'routes[0].requestHeaders.add[""]: expected a header name as the key, got ""',
      'routes[0].responseHeaders.set["x(b)"]: expected a header name as the key, got "x(b)"',
    ])
  })

  test('refuses a key named __proto__ at its path instead of dropping it unchecked', () => {
    const text = `listeners: [{ name: public, port: 8080 }]
routes: [{ match: { pathPrefix: / }, upstream: api }]
upstreams:
  api: { endpoints: [{ url: "http://127.0.0.1:9001" }], policyOptions: { __proto__: { a: 1 } } }
  __proto__: { endpoints: [{ url: "http://127.0.0.1:9002" }] }
__proto__: { admin: { port: 1 } }
`
    assert.deepEqual(
      configIssuesOf(() => parseConfigText(text, {})),
      [
        'upstreams.api.policyOptions.__proto__: a key may not be "__proto__"',
        'upstreams.__proto__: a key may not be "__proto__"',
        '__proto__: a key may not be "__proto__"',
      ],
    )
  })
})

describe('environment substitution', () => {
  const yaml = (port: string) => `
listeners:
  - name: public
    port: ${port}
routes:
  - match: { pathPrefix: / }
    upstream: api
upstreams:
  api:
    sticky: { cookie: { secret: "\${SECRET:-}" } }
    endpoints:
      - url: \${API_URL}
`

  test('substitutes ${VAR} and types whole-placeholder scalars', () => {
    const config = parseConfigText(yaml('${PORT}'), { PORT: '8181', API_URL: 'http://10.0.0.1:80' })
    assert.equal(config.listeners[0]!.port, 8181)
    assert.equal(config.upstreams.api!.endpoints[0]!.url, 'http://10.0.0.1:80')
  })

  test('keeps a value as text when, as a number, it would not read back as written', () => {
    const config = parseConfigText(yaml('${PORT}'), {
      PORT: '8181',
      API_URL: 'http://h:1',
      SECRET: '12345678901234567890',
    })
    const sticky = config.upstreams.api!.sticky as { cookie: { secret?: string } }
    assert.equal(sticky.cookie.secret, '12345678901234567890')
    const decimal = parseConfigText(yaml('${PORT}'), {
      PORT: '8181',
      API_URL: 'http://h:1',
      SECRET: '0.90000000000000000001',
    })
    assert.equal(
      (decimal.upstreams.api!.sticky as { cookie: { secret?: string } }).cookie.secret,
      '0.90000000000000000001',
    )
  })

  test('reads a decimal placeholder as its number where a number is wanted, however it is written', () => {
    const config = parseConfigText(
      `${yaml('${PORT}')}    policy: aya
    policyOptions:
      kvHighWater: \${KV}
      overheadMs: \${OVERHEAD}
shutdown:
  drainTimeoutMs: \${DRAIN}
`,
      { PORT: '08181', API_URL: 'http://h:1', KV: '0.90', OVERHEAD: '.5', DRAIN: '1e3' },
    )
    assert.equal(config.listeners[0]!.port, 8181)
    assert.equal(config.shutdown.drainTimeoutMs, 1000)
    const options = config.upstreams.api!.policyOptions as {
      kvHighWater: number
      overheadMs: number
    }
    assert.equal(options.kvHighWater, 0.9)
    assert.equal(options.overheadMs, 0.5)
    // Past what a number holds, it stays the text it was, and the schema names it.
    const huge = configIssuesOf(() =>
      parseConfigText(yaml('${PORT}'), { PORT: '1e999', API_URL: 'h' }),
    )
    assert.match(huge[0]!, /^listeners\[0\]\.port: .*got "1e999"/)
  })

  test('uses the default of ${VAR:-default} when unset or empty', () => {
    const config = parseConfigText(yaml('${PORT:-8282}'), { PORT: '', API_URL: 'http://h:1' })
    assert.equal(config.listeners[0]!.port, 8282)
    const sticky = config.upstreams.api!.sticky as { cookie: { secret?: string } }
    assert.equal(sticky.cookie.secret, '')
  })

  test('treats a missing variable without a default as an error, not an empty string', () => {
    const issues = configIssuesOf(() => parseConfigText(yaml('8080'), {}))
    assert.deepEqual(issues, [
      'upstreams.api.endpoints[0].url: environment variable API_URL is not set and has no default (write ${API_URL:-default})',
    ])
  })

  test('drops an empty entry from a list, such as an unset second key', () => {
    const config = parseConfigObject(
      { ...base(), trustedProxies: ['${PROXY_A}', '${PROXY_B:-}'] },
      { PROXY_A: '10.0.0.0/8' },
    )
    assert.deepEqual(config.trustedProxies, ['10.0.0.0/8'])
  })

  test('refuses a mistyped placeholder, naming its path and text, rather than keep it as literal text', () => {
    const headers = (value: string) => ({
      ...base(),
      routes: [
        {
          match: { pathPrefix: '/' },
          upstream: 'api',
          requestHeaders: { set: { 'x-tenant': value } },
        },
      ],
    })
    const wording =
      'is not a placeholder: write ${VAR} or ${VAR:-default} (with no "${" in the default), or $${ for a literal "${"'
    for (const [value, written] of [
      ['acme-${TENANT', '"${TENANT"'],
      ['${TENANT-acme}', '"${TENANT-acme}"'],
      ['${ TENANT }', '"${"'],
      // Never the text after a space, which may be a credential.
      ['Bearer ${TOKEN sk-live-0123', '"${TOKEN"'],
      ['${}', '"${}"'],
      ['${TENANT:-${DEFAULT_TENANT}}', '"${TENANT:-${DEFAULT_TENANT}"'],
    ] as const) {
      assert.deepEqual(
        configIssuesOf(() => parseConfigObject(headers(value), { DEFAULT_TENANT: 'a' })),
        [`routes[0].requestHeaders.set.x-tenant: ${written} ${wording}`],
        value,
      )
    }
    // A credential's text is not printed, even the part after a mistyped placeholder.
    const secret = {
      ...base(),
      upstreams: {
        api: { ...base().upstreams.api, sticky: { cookie: { secret: `${'x'.repeat(32)}\${KEY` } } },
      },
    }
    assert.deepEqual(configIssuesOf(secret), [
      `upstreams.api.sticky.cookie.secret: a value of 5 characters (not shown) ${wording}`,
    ])
    // Written as $${, it is a literal, and a lone $ stays as it is.
    const literal = parseConfigObject(headers('$${TENANT} costs $5'), {})
    assert.equal(literal.routes[0]!.requestHeaders!.set['x-tenant'], '${TENANT} costs $5')
    const withDollar = parseConfigObject(headers('${TENANT:-a$b}'), {})
    assert.equal(withDollar.routes[0]!.requestHeaders!.set['x-tenant'], 'a$b')
  })

  test('keeps $$ as a literal dollar', () => {
    const config = parseConfigObject(
      {
        ...base(),
        routes: [
          {
            match: { pathPrefix: '/' },
            upstream: 'api',
            requestHeaders: { set: { 'x-cost': '$$5' } },
          },
        ],
      },
      {},
    )
    assert.equal(config.routes[0]!.requestHeaders!.set['x-cost'], '$5')
  })
})
