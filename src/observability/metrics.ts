import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { UpstreamGroup } from '../balancer/upstream-group.ts'
import type { RequestContext } from '../proxy/request-context.ts'

export interface AyaMetrics {
  readonly registry: Registry
  /** Groups to read in-flight gauges from at scrape time. */
  setGroups(groups: () => Iterable<UpstreamGroup>): void
  observeRequest(ctx: RequestContext): void
}

/**
 * Every Aya metric is defined here; the core never imports prom-client. Each Aya instance has its
 * own registry, so two instances in one process (tests, the benchmark) never mix their counts.
 */
export function createMetrics(): AyaMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'aya_process_' })
  let groups: () => Iterable<UpstreamGroup> = () => []

  const requests = new Counter({
    name: 'aya_requests_total',
    help: 'Requests handled, by route, upstream group, endpoint and response status.',
    labelNames: ['route', 'upstream', 'endpoint', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'aya_request_duration_seconds',
    help: 'Time from request arrival to the end of the response.',
    labelNames: ['route', 'upstream'] as const,
    buckets: [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
    ],
    registers: [registry],
  })
  const upstreamLatency = new Histogram({
    name: 'aya_upstream_response_seconds',
    help: 'Time from dispatch to the upstream response headers.',
    labelNames: ['upstream'] as const,
    buckets: [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ],
    registers: [registry],
  })
  const errors = new Counter({
    name: 'aya_errors_total',
    help: 'Local replies and cut responses, by error code.',
    labelNames: ['code', 'route'] as const,
    registers: [registry],
  })
  const bytesIn = new Counter({
    name: 'aya_request_bytes_total',
    help: 'Request body bytes received from clients.',
    labelNames: ['route'] as const,
    registers: [registry],
  })
  const bytesOut = new Counter({
    name: 'aya_response_bytes_total',
    help: 'Response body bytes sent to clients.',
    labelNames: ['route'] as const,
    registers: [registry],
  })
  new Gauge({
    name: 'aya_endpoint_inflight_requests',
    help: 'Requests dispatched to an endpoint and not finished.',
    labelNames: ['upstream', 'endpoint'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const group of groups()) {
        for (const endpoint of group.endpoints()) {
          this.set({ upstream: group.name, endpoint: endpoint.id }, endpoint.inflight)
        }
      }
    },
  })
  new Gauge({
    name: 'aya_endpoint_eligible',
    help: '1 when the endpoint is enabled and not unhealthy.',
    labelNames: ['upstream', 'endpoint'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const group of groups()) {
        const eligible = new Set(group.eligible())
        for (const endpoint of group.endpoints()) {
          this.set({ upstream: group.name, endpoint: endpoint.id }, eligible.has(endpoint) ? 1 : 0)
        }
      }
    },
  })

  const observeRequest = (ctx: RequestContext) => {
    const route = ctx.route?.name ?? 'none'
    const upstream = ctx.upstream ?? 'none'
    requests.inc({
      route,
      upstream,
      endpoint: ctx.endpoint?.id ?? 'none',
      status: String(ctx.status),
    })
    duration.observe({ route, upstream }, ctx.durationMs / 1000)
    if (ctx.upstreamLatencyMs !== undefined)
      upstreamLatency.observe({ upstream }, ctx.upstreamLatencyMs / 1000)
    if (ctx.errorCode !== undefined) errors.inc({ code: ctx.errorCode, route })
    if (ctx.bytesIn > 0) bytesIn.inc({ route }, ctx.bytesIn)
    if (ctx.bytesOut > 0) bytesOut.inc({ route }, ctx.bytesOut)
  }
  return {
    registry,
    setGroups(next) {
      groups = next
    },
    observeRequest,
  }
}
