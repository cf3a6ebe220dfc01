// Config files for every server in the benchmark, as in Appendix A of
// /work/shared/research/general-lbs.md. All listen on 127.0.0.1 only.

/** One nginx worker in the foreground, its files under `dir`, serving the `http` block's body. */
export function nginxConf(dir: string, name: string, http: string): string {
  return `worker_processes 1; daemon off; master_process off;
pid ${dir}/${name}.pid; error_log ${dir}/${name}-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 65; default_type text/plain;
  client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy;
${http}}
`
}

/** nginx answering `200 "ok"` (2-byte text/plain body): the upstream, and the "direct" target. */
export function nginxUpstreamConf(dir: string, name: string, port: number): string {
  return nginxConf(
    dir,
    name,
    `  server { listen 127.0.0.1:${port} backlog=4096; location / { return 200 "ok"; } }\n`,
  )
}

/**
 * nginx as a reverse proxy with upstream keep-alive ("nginx-ka" in the note). A request body
 * larger than `client_body_buffer_size` (16k by default) is written to a temp file and sent on
 * from there, which costs bench:gateway's 32 kB prompt about 20 ms at c=1: 64k keeps it in memory.
 */
export function nginxProxyConf(dir: string, port: number, upstreamPort: number): string {
  return `worker_processes 1; daemon off; master_process off;
pid ${dir}/nginx-proxy.pid; error_log ${dir}/nginx-proxy-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; client_body_buffer_size 64k;
  client_body_temp_path ${dir}/nginx-proxy-body; proxy_temp_path ${dir}/nginx-proxy-proxy;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
`
}

/** HAProxy, one thread; its defaults keep server-side connections alive (`http-reuse safe`). */
export function haproxyCfg(port: number, upstreamPort: number): string {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${upstreamPort}
`
}

/** Aya's listener and admin listener on 127.0.0.1, and its access log on (metrics always are). */
export function ayaListenersYaml(port: number, adminPort: number): string {
  return `listeners:
  - name: bench
    address: 127.0.0.1
    port: ${port}
admin:
  address: 127.0.0.1
  port: ${adminPort}
log: { level: info, access: true }
`
}

/** Aya with routing, metrics (always on) and the access log on; one least-request endpoint. */
export function ayaYaml(port: number, adminPort: number, upstreamPort: number): string {
  return `${ayaListenersYaml(port, adminPort)}routes:
  - match: { pathPrefix: / }
    upstream: up
upstreams:
  up:
    policy: least-request
    endpoints:
      - url: http://127.0.0.1:${upstreamPort}
`
}
