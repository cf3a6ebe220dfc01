import { isIP } from 'node:net'
import { findPicker, pickerNames } from '../balancer/picker-registry.ts'
import { MAX_MODEL_CHARS } from '../llm/llm-body.ts'
import { validateCidr } from '../proxy/client-address.ts'
import { isPriorityName } from '../resilience/priority-classes.ts'
import { parseProfileList } from '../sim/profiles.ts'
import type { ConfigIssue } from './config-error.ts'
import { describeValue, formatPath, toConfigIssues } from './config-error.ts'
import { safeParseWithEnvNumbers } from './env-numbers.ts'
import { routeNameOf } from './route-name.ts'
import type { Config } from './schema.ts'
import { UNMATCHED_LABEL } from './unmatched-label.ts'

/**
 * Rules that span several keys: references between sections, duplicates, and each policy's own
 * options. Returns the config with `policyOptions` replaced by their parsed, defaulted form.
 */
export function validateConfig(
  config: Config,
  issues: ConfigIssue[],
  /** Placeholder-only values that stayed decimal strings, for a policy's numeric options. */
  decimalPaths: ReadonlySet<string> = new Set(),
): Config {
  const at = (...path: PropertyKey[]) => formatPath(path)

  const seenNames = new Set<string>()
  config.listeners.forEach((listener, i) => {
    if (seenNames.has(listener.name)) {
      issues.push({
        path: at('listeners', i, 'name'),
        message: `duplicate listener name "${listener.name}"`,
      })
    }
    seenNames.add(listener.name)
    const address = bindKey(listener.address)
    const first = config.listeners.findIndex(
      (other, j) =>
        j < i &&
        listener.port !== 0 &&
        other.port === listener.port &&
        bindClash(bindKey(other.address), address) !== undefined,
    )
    if (first >= 0) {
      const other = config.listeners[first]!
      const otherAddress = bindKey(other.address)
      issues.push({
        path: at('listeners', i, 'port'),
        message:
          otherAddress === address
            ? `duplicate listener port ${listener.port} on ${listener.address} (also listeners[${first}])`
            : `port ${listener.port} on ${listener.address} is also bound by listeners[${first}] on ${other.address}: ${bindClash(otherAddress, address)}`,
      })
    }
    if (
      listener.port !== 0 &&
      listener.port === config.admin.port &&
      bindClash(bindKey(config.admin.address), address) !== undefined
    ) {
      issues.push({
        path: at('listeners', i, 'port'),
        message: `port ${listener.port} is also the admin port (admin on ${config.admin.address})`,
      })
    }
    for (const [j, cidr] of (listener.trustedProxies ?? []).entries()) {
      checkCidr(cidr, at('listeners', i, 'trustedProxies', j), issues)
    }
  })
  for (const [i, cidr] of config.trustedProxies.entries())
    checkCidr(cidr, at('trustedProxies', i), issues)

  const upstreamNames = Object.keys(config.upstreams)
  const checkRef = (name: string, path: string) => {
    if (!Object.hasOwn(config.upstreams, name)) {
      const known = upstreamNames.length ? upstreamNames.join(', ') : 'none are defined'
      issues.push({ path, message: `unknown upstream ${describeValue(name)} (known: ${known})` })
    }
  }
  checkRouteNames(config.routes, issues)
  config.routes.forEach((route, i) => {
    const targets = [route.upstream, route.split, route.redirect, route.gateway].filter(
      (t) => t !== undefined,
    )
    if (targets.length !== 1) {
      issues.push({
        path: at('routes', i),
        message: 'expected exactly one of upstream, split, redirect or gateway',
      })
    }
    if (route.gateway === 'models' && Object.keys(config.models).length === 0) {
      issues.push({
        path: at('routes', i, 'gateway'),
        message: 'a models gateway needs at least one entry in models',
      })
    }
    if (route.upstream !== undefined) checkRef(route.upstream, at('routes', i, 'upstream'))
    for (const [j, entry] of (route.split ?? []).entries()) {
      checkRef(entry.upstream, at('routes', i, 'split', j, 'upstream'))
    }
    if (route.split?.every((entry) => entry.weight === 0)) {
      issues.push({
        path: at('routes', i, 'split'),
        message: 'at least one split weight must be positive',
      })
    }
    if (route.mirror) checkRef(route.mirror.upstream, at('routes', i, 'mirror', 'upstream'))
    // An unknown class would silently become the default class at every request.
    if (typeof route.priority === 'string' && !isPriorityName(route.priority, config.priorities)) {
      issues.push({
        path: at('routes', i, 'priority'),
        message: `unknown priority class ${describeValue(route.priority)} (expected an integer or one of ${Object.keys(config.priorities.classes).join(', ')})`,
      })
    }
    if (route.rewrite && route.match.pathPrefix === undefined) {
      issues.push({
        path: at('routes', i, 'rewrite', 'pathPrefix'),
        message: 'a prefix rewrite needs match.pathPrefix to replace',
      })
    }
    // Either would be ignored, the Location keeping the request's own path: with no scheme or host
    // to change, the redirect pointed at itself and browsers went round until they gave up.
    if (route.redirect?.pathPrefix !== undefined) {
      const redirectPrefixAt = at('routes', i, 'redirect', 'pathPrefix')
      if (route.redirect.path !== undefined) {
        issues.push({
          path: redirectPrefixAt,
          message: 'a redirect sets path (the whole path) or pathPrefix (its prefix), not both',
        })
      } else if (route.match.pathPrefix === undefined) {
        issues.push({
          path: redirectPrefixAt,
          message: 'a prefix redirect needs match.pathPrefix to replace',
        })
      }
    }
  })

  const upstreams: Config['upstreams'] = {}
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const definition = findPicker(upstream.policy)
    let policyOptions = upstream.policyOptions
    if (!definition) {
      issues.push({
        path: at('upstreams', name, 'policy'),
        message: `unknown policy ${describeValue(upstream.policy)} (expected one of ${pickerNames().join(', ')})`,
      })
    } else {
      const optionsPath = ['upstreams', name, 'policyOptions']
      const parsed = safeParseWithEnvNumbers(
        definition.optionsSchema,
        upstream.policyOptions,
        decimalPaths,
        optionsPath,
      )
      if (parsed.success) {
        policyOptions = parsed.data as Record<string, unknown>
      } else {
        issues.push(...toConfigIssues(parsed.error.issues, upstream.policyOptions, optionsPath))
      }
      if (definition.hashKey === 'required' && upstream.hashKey === undefined) {
        issues.push({
          path: at('upstreams', name, 'hashKey'),
          message: `policy ${upstream.policy} needs a hashKey selector, e.g. { header: x-user }`,
        })
      }
      // A key on a policy that ignores it reads as hashing that does not happen.
      if (definition.hashKey === 'ignored' && upstream.hashKey !== undefined) {
        const users = pickerNames().filter((n) => findPicker(n)?.hashKey !== 'ignored')
        issues.push({
          path: at('upstreams', name, 'hashKey'),
          message: `policy ${upstream.policy} does not use a hashKey (${users.join(' and ')} do)`,
        })
      }
    }
    // A misspelt class would silently give that class the group's defaults.
    for (const className of Object.keys(upstream.admission?.classes ?? {})) {
      if (!Object.hasOwn(config.priorities.classes, className)) {
        issues.push({
          path: at('upstreams', name, 'admission', 'classes', className),
          message: `unknown priority class ${describeValue(className)} (expected one of ${Object.keys(config.priorities.classes).join(', ')})`,
        })
      }
    }
    if (upstream.sim) {
      if (upstream.endpoints.length > 0) {
        issues.push({
          path: at('upstreams', name, 'sim'),
          message: 'an upstream has either sim or endpoints, not both',
        })
      }
      try {
        parseProfileList(upstream.sim.profile, upstream.sim.replicas)
      } catch (error) {
        issues.push({
          path: at('upstreams', name, 'sim', 'profile'),
          message: `${(error as Error).message}, got ${describeValue(upstream.sim.profile)}`,
        })
      }
    } else if (upstream.endpoints.length === 0) {
      issues.push({
        path: at('upstreams', name, 'endpoints'),
        message: 'expected at least one endpoint',
      })
    }
    checkStaleness(
      upstream.engineMetrics,
      at('upstreams', name, 'engineMetrics', 'staleAfterMs'),
      issues,
    )
    checkNotUnmatchedLabel(name, 'upstream', at('upstreams', name), issues)
    const ids = new Set<string>()
    upstream.endpoints.forEach((endpoint, i) => {
      const id = endpointId(endpoint)
      checkNotUnmatchedLabel(id, 'endpoint', at('upstreams', name, 'endpoints', i, 'id'), issues)
      if (ids.has(id)) {
        issues.push({
          path: at('upstreams', name, 'endpoints', i),
          message: `duplicate endpoint ${id}`,
        })
      }
      ids.add(id)
    })
    upstreams[name] = { ...upstream, policyOptions }
  }
  checkModels(config, issues)
  return { ...config, upstreams }
}

/**
 * A reading is asked for every `scrapeIntervalMs` and stamped when asked, so one kept no longer
 * than the interval is stale before the next can arrive: every policy that reads engine metrics
 * would go blind between scrapes, with nothing to say why.
 */
function checkStaleness(
  engineMetrics: Config['upstreams'][string]['engineMetrics'],
  path: string,
  issues: ConfigIssue[],
): void {
  if (!engineMetrics || engineMetrics.staleAfterMs === undefined) return
  const { scrapeIntervalMs, staleAfterMs } = engineMetrics
  if (staleAfterMs > scrapeIntervalMs) return
  issues.push({
    path,
    message: `expected more than scrapeIntervalMs (${scrapeIntervalMs}): every reading would be stale before the next one arrives (leave room for the scrape itself: 2 to 3 intervals), got ${describeValue(staleAfterMs)}`,
  })
}

function checkNotUnmatchedLabel(name: string, what: string, path: string, issues: ConfigIssue[]) {
  if (name !== UNMATCHED_LABEL) return
  issues.push({
    path,
    message: `${describeValue(name)} is reserved: metrics label requests that no ${what} took "${UNMATCHED_LABEL}"`,
  })
}

/**
 * A route's name is its label in metrics and logs: two routes under one name would merge their
 * series. A route without one is `route-<index>` (`routeNameOf`), so a name may not take that
 * either.
 */
function checkRouteNames(routes: Config['routes'], issues: ConfigIssue[]): void {
  const first = new Map<string, number>()
  routes.forEach((route, i) => {
    const name = routeNameOf(route, i)
    checkNotUnmatchedLabel(name, 'route', formatPath(['routes', i, 'name']), issues)
    const j = first.get(name)
    if (j === undefined) {
      first.set(name, i)
      return
    }
    // Two default names never meet, so one of the pair is named: the issue sits at that name.
    const named = route.name === undefined ? j : i
    const other = named === i ? j : i
    const otherPath =
      routes[other]!.name === undefined
        ? `the default name of routes[${other}]`
        : formatPath(['routes', other, 'name'])
    issues.push({
      path: formatPath(['routes', named, 'name']),
      message: `duplicate route name ${describeValue(name)} (also ${otherPath}): the two routes' metrics and logs would merge`,
    })
  })
}

/**
 * An address as `listen` binds it: an IPv6 literal in one spelling (`0::0` is `::`; one with a
 * zone, `fe80::1%eth0`, as written), a name in lower case.
 */
function bindKey(address: string): string {
  const name = address.toLowerCase()
  if (isIP(name) === 6) {
    const canonical = URL.parse(`http://[${name}]`)?.hostname.slice(1, -1) ?? name
    // An IPv4-mapped address binds its IPv4 address (`::ffff:7f00:1` is 127.0.0.1).
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical)
    if (mapped === null) return canonical
    const [high, low] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)]
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.')
  }
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/**
 * Why two listeners on one port cannot both bind (EADDRINUSE), or undefined when they can: the
 * same address, or a wildcard that takes the port on the other too (`::` is dual-stack in Node,
 * so it takes every address; `0.0.0.0` every IPv4 one). A host name resolves only at bind time,
 * to what cannot be told here, so it is taken to clash with any other address.
 */
function bindClash(a: string, b: string): string | undefined {
  if (a === b) return 'the same address'
  if (a === '::' || b === '::') return '`::` takes that port on every address'
  if ((a === '0.0.0.0' && isIP(b) === 4) || (b === '0.0.0.0' && isIP(a) === 4)) {
    return '0.0.0.0 takes that port on every IPv4 address'
  }
  if (isIP(a) === 0 || isIP(b) === 0) {
    return 'a host name resolves only when bound, maybe to the other address'
  }
  return undefined
}

export function endpointId(endpoint: {
  readonly url: string
  readonly id?: string | undefined
}): string {
  if (endpoint.id !== undefined) return endpoint.id
  const url = new URL(endpoint.url)
  const defaultPort = url.protocol === 'https:' ? '443' : '80'
  return `${url.hostname}:${url.port || defaultPort}`
}

/**
 * Every model name, alias and LoRA adapter resolves to exactly one entry, each model has one
 * deployment, and it exists.
 */
function checkModels(config: Config, issues: ConfigIssue[]): void {
  type Role = 'name' | 'aliases' | 'loras'
  const owner = new Map<string, { readonly model: string; readonly role: Role }>()
  const claim = (name: string, by: string, role: Role, path: string) => {
    const first = owner.get(name)
    if (first !== undefined && first.model !== by) {
      issues.push({ path, message: `"${name}" is already a name of model "${first.model}"` })
    } else if (
      first !== undefined &&
      first.role !== role &&
      (first.role === 'loras' || role === 'loras')
    ) {
      // Within one model a name resolves as its base (own name or alias) before as an adapter,
      // so an adapter also listed so would never be asked for.
      issues.push({
        path,
        message: `"${name}" is both a LoRA adapter of model "${by}" and its ${first.role === 'name' || role === 'name' ? 'own name' : 'alias'}: requests for it could not reach the adapter`,
      })
    }
    owner.set(name, first ?? { model: by, role })
  }
  for (const name of Object.keys(config.models)) owner.set(name, { model: name, role: 'name' })
  for (const [name, model] of Object.entries(config.models)) {
    if ((name.match(/\*/g) ?? []).length > 1) {
      issues.push({
        path: formatPath(['models', name]),
        message: 'a wildcard model name may hold one *',
      })
    }
    checkRequestable(name, formatPath(['models', name]), issues)
    for (const [field, names] of [
      ['aliases', model.aliases],
      ['loras', model.loras],
    ] as const) {
      for (const [i, other] of names.entries()) {
        const path = formatPath(['models', name, field, i])
        // Only a model's own name may be a pattern: an alias or adapter is one exact name the
        // client sends, and `GET /v1/models` lists it as such.
        if (other.includes('*')) {
          issues.push({
            path,
            message: `${describeValue(other)} may not hold a *: only a model's own name may be a wildcard`,
          })
        }
        checkRequestable(other, path, issues)
        claim(other, name, field, path)
      }
    }
    for (const [i, deployment] of model.deployments.entries()) {
      // Fallbacks and splits between deployments come with the provider gateway; until then a
      // second deployment would be silently ignored, so it is refused.
      if (i > 0) {
        issues.push({
          path: formatPath(['models', name, 'deployments', i]),
          message: `only one deployment per model is supported for now (fallbacks and splits are not yet implemented), got ${describeValue(deployment)}`,
        })
      }
      if (!Object.hasOwn(config.upstreams, deployment.upstream)) {
        const known = Object.keys(config.upstreams).join(', ') || 'none are defined'
        issues.push({
          path: formatPath(['models', name, 'deployments', i, 'upstream']),
          message: `unknown upstream ${describeValue(deployment.upstream)} (known: ${known})`,
        })
      }
    }
  }
}

/**
 * A request names its model in at most MAX_MODEL_CHARS characters (a 400 past that), so a longer
 * name could never be asked for, though `GET /v1/models` would list it; nor could a wildcard
 * whose fixed part is longer ever match.
 */
function checkRequestable(name: string, path: string, issues: ConfigIssue[]): void {
  const fixedChars = name.includes('*') ? name.length - 1 : name.length
  if (fixedChars <= MAX_MODEL_CHARS) return
  issues.push({
    path,
    message: `expected at most ${MAX_MODEL_CHARS} characters, the longest model name a request may send, got ${describeValue(name)} (${name.length} characters)`,
  })
}

function checkCidr(cidr: string, path: string, issues: ConfigIssue[]): void {
  const problem = validateCidr(cidr)
  if (problem !== undefined)
    issues.push({ path, message: `${problem}, got ${describeValue(cidr)}` })
}
