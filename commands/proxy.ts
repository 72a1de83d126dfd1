/**
 * Pure builders for the host's proxy (issue #19): Caddy in front of a service's instances.
 *
 * Why the switch is a symlink and not a proxy reload: every Caddy config change (a POST /load,
 * or any admin API edit) replaces its HTTP servers, which closes idle keep-alive client
 * connections; a client that sends on one in that instant gets a reset. Measured here (Caddy
 * 2.6.2, 200 req/s over 4 keep-alive connections): 18 reloads → 5 ECONNRESET; 18 switches by
 * symlink → 0 failed (docs/zero-downtime.md). So a route dials one stable unix socket per
 * service, `<dir>/proxy/current.sock`, a symlink to the serving instance's socket; a release
 * switch is one rename of that symlink, and Caddy's config changes only when a route does (hosts,
 * path, TLS, maintenance). Each instance's socket is forwarded to its `PORT` by
 * systemd-socket-proxyd, so the service itself only ever takes a TCP port from the environment.
 * Upstream keep-alive is off: each request dials the symlink afresh, so after the rename no new
 * request reaches the old instance, and its drain is "no connection left".
 */
import { emitBytes, shq, writeFileAtomic } from "./quote";
import type { ProxySpec } from "../model/proxy";
import { hostPort } from "../model/rules/proxy";

/** fleet's Caddy: its config, the route fragments services write, its admin socket and storage. */
export const PROXY = {
  unit: "fleet-proxy",
  unitFile: "/etc/systemd/system/fleet-proxy.service",
  etc: "/etc/fleet/proxy",
  config: "/etc/fleet/proxy/caddy.json",
  adminSocket: "/run/fleet-proxy/admin.sock",
  storage: "/var/lib/fleet/proxy",
  socketProxyd: "/lib/systemd/systemd-socket-proxyd",
  /** Config reloads (route changes only) let requests in flight finish for this long. */
  gracePeriod: "30s",
} as const;

/** Where one service's proxy state lives on the host. */
export interface ProxyLayout {
  /** The instances' sockets, and the stable symlink routes dial. */
  readonly socketDir: string;
  readonly currentSocket: string;
  /** The serving instance's port (one line). */
  readonly servingFile: string;
}

export function proxyLayout(serviceDir: string): ProxyLayout {
  const socketDir = `${serviceDir}/proxy`;
  return { socketDir, currentSocket: `${socketDir}/current.sock`, servingFile: `${socketDir}/serving` };
}

/** The server a route belongs to: one per address and port. */
export function serverKey(spec: Pick<ProxySpec, "listen" | "port">): string {
  return `fleet-${(spec.listen || "any").replace(/[^A-Za-z0-9]/g, "_")}-${spec.port}`;
}

/**
 * Routes are tried in order: the longest path prefix first, a route with host names before one
 * without, then by service name (stable). The fragment's file name carries this order.
 */
export function routeSortKey(service: string, spec: Pick<ProxySpec, "path" | "hosts">): string {
  const prefix = spec.path === "/" ? "" : spec.path.replace(/\/+$/, "");
  return `${String(999 - Math.min(prefix.length, 999)).padStart(3, "0")}-${spec.hosts.length ? 0 : 1}-${service}`;
}

/** One service's Caddy route: its matchers, then its instance (or the maintenance page). */
export function routeConfig(service: string, serviceDir: string, spec: ProxySpec): Record<string, unknown> {
  const prefix = spec.path === "/" ? "" : spec.path.replace(/\/+$/, "");
  const match: Record<string, unknown> = {};
  if (spec.hosts.length) match["host"] = [...spec.hosts];
  if (prefix) match["path"] = [prefix, `${prefix}/*`];
  const handle = spec.maintenance
    ? [
        {
          handler: "static_response",
          status_code: 503,
          headers: { "Retry-After": ["120"], "Content-Type": ["text/plain; charset=utf-8"] },
          body: `${service} is down for maintenance; please retry in a few minutes.\n`,
        },
      ]
    : [
        {
          handler: "reverse_proxy",
          transport: { protocol: "http", keep_alive: { enabled: false } },
          upstreams: [{ dial: `unix/${proxyLayout(serviceDir).currentSocket}` }],
        },
      ];
  return {
    "@id": `fleet-${service}`,
    ...(Object.keys(match).length ? { match: [match] } : {}),
    handle,
    terminal: true,
  };
}

/** The server's own settings (address, automatic HTTPS), shared by every route on it. */
export function serverConfig(spec: Pick<ProxySpec, "listen" | "port" | "tls">): Record<string, unknown> {
  return {
    listen: [hostPort(spec.listen, spec.port)],
    automatic_https: spec.tls === "off" ? { disable: true } : { disable_redirects: true },
  };
}

/**
 * The certificate policy for one TLS host name; none for `tls: "off"`. One per host name: Caddy
 * refuses two policies for one name, and two services on one domain (`/api` and `/`) share it.
 */
export function tlsPolicy(
  spec: Pick<ProxySpec, "tls" | "acme"> & { readonly port?: number },
  hostName: string,
): Record<string, unknown> | undefined {
  if (spec.tls === "off") return undefined;
  const issuer =
    spec.tls === "internal"
      ? { module: "internal" }
      : {
          module: "acme",
          email: spec.acme?.email ?? "",
          ...(spec.acme?.ca ? { ca: spec.acme.ca } : {}),
          ...(spec.acme?.caRoot ? { trusted_roots_pem_files: [spec.acme.caRoot] } : {}),
          // On 443 the CA reaches the usual challenge ports. Elsewhere (a private CA, a test) the
          // proxy answers TLS-ALPN on its own port and never binds :80 for HTTP-01.
          ...(spec.port !== undefined && spec.port !== 443
            ? { challenges: { http: { disabled: true }, "tls-alpn": { alternate_port: spec.port } } }
            : {}),
        };
  return { subjects: [hostName], issuers: [issuer] };
}

/** fleet's Caddy unit: runs as Debian's `caddy` account, may bind low ports, config from fleet. */
export function proxyUnit(): string {
  return [
    "# Managed by fleet. Local edits are overwritten on bootstrap.",
    "[Unit]",
    "Description=fleet proxy (Caddy)",
    "After=network-online.target",
    "Wants=network-online.target",
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "User=caddy",
    "Group=caddy",
    "RuntimeDirectory=fleet-proxy",
    "RuntimeDirectoryPreserve=yes",
    `ExecStart=/usr/bin/caddy run --config ${PROXY.config}`,
    "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    "Restart=always",
    "RestartSec=1",
    "LimitNOFILE=1048576",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The config the proxy boots with before any service has a route: admin socket and storage only. */
export function emptyProxyConfig(): string {
  return (
    JSON.stringify({
      admin: { listen: `unix/${PROXY.adminSocket}` },
      storage: { module: "file_system", root: PROXY.storage },
    }) + "\n"
  );
}

/**
 * An instance's socket and its forwarder: `<unit>-sock@<port>.socket` listens on
 * `<dir>/proxy/<port>.sock` and hands each connection to systemd-socket-proxyd, which opens
 * 127.0.0.1:<port>. Caddy's account reaches the socket (0666, in a 0755 directory), as any
 * local account reaches 127.0.0.1:<port> already.
 */
export function instanceSocketUnits(unitName: string, serviceDir: string): { socket: string; service: string } {
  const marker = "# Managed by fleet. Local edits are overwritten on deploy.";
  return {
    socket: [
      marker,
      "[Unit]",
      `Description=fleet proxy socket of ${unitName} instance %i`,
      "",
      "[Socket]",
      `ListenStream=${proxyLayout(serviceDir).socketDir}/%i.sock`,
      "SocketMode=0666",
      "RemoveOnStop=yes",
      "",
      "[Install]",
      "WantedBy=sockets.target",
      "",
    ].join("\n"),
    service: [
      marker,
      "[Unit]",
      `Description=fleet proxy forwarder of ${unitName} instance %i`,
      `Requires=${unitName}-sock@%i.socket`,
      `After=${unitName}-sock@%i.socket`,
      "",
      "[Service]",
      `ExecStart=${PROXY.socketProxyd} 127.0.0.1:%i`,
      "DynamicUser=yes",
      "",
    ].join("\n"),
  };
}

/**
 * Writes this service's route fragment (and the server's settings, and its certificate policy)
 * under /etc/fleet/proxy, where `proxyLoadLines` assembles them: each service owns its files, so
 * changing one service's route never rewrites another's.
 */
export function writeRouteLines(
  service: string,
  serviceDir: string,
  spec: ProxySpec,
  etc: string = PROXY.etc,
): string[] {
  const server = `${etc}/servers/${serverKey(spec)}`;
  return [
    ...removeRouteLines(service, etc),
    `mkdir -p ${shq(`${server}/routes`)} ${shq(`${etc}/tls`)}`,
    writeFileAtomic(`${server}/server.json`, JSON.stringify(serverConfig(spec)), "644"),
    writeFileAtomic(
      `${server}/routes/${routeSortKey(service, spec)}.json`,
      JSON.stringify(routeConfig(service, serviceDir, spec)),
      "644",
    ),
    // `<host>@<service>.json`: each service owns its files; the assembly keeps one per host name.
    ...spec.hosts.flatMap((hostName) => {
      const policy = tlsPolicy(spec, hostName);
      return policy ? [writeFileAtomic(`${etc}/tls/${hostName}@${service}.json`, JSON.stringify(policy), "644")] : [];
    }),
  ];
}

/** Removes this service's route (its fragments); `proxyLoadLines` then drops it from the proxy. */
export function removeRouteLines(service: string, etc: string = PROXY.etc): string[] {
  // The order prefix is fixed-width (routeSortKey): `*-api.json` would also match `my-api`'s route.
  return [
    `rm -f ${shq(etc)}/servers/*/routes/[0-9][0-9][0-9]-[01]-${shq(service)}.json ${shq(etc)}/tls/*@${shq(service)}.json`,
  ];
}

/** The last route of every server: a request no service's route matches gets a 404, not Caddy's empty 200. */
const NOT_ROUTED = {
  handle: [{ handler: "static_response", status_code: 404, body: "No fleet service is routed here.\n" }],
};

/** `proxy_config`: prints the proxy's whole config, assembled from the fragments under `etcDir`. */
export function proxyConfigLines(etcDir: string = PROXY.etc): string[] {
  const etc = shq(etcDir);
  return [
    `join_json() { sep=; for f in "$@"; do [ -f "$f" ] || continue; printf '%s' "$sep"; cat "$f"; sep=,; done; }`,
    `proxy_config() {`,
    `  printf '{"admin":{"listen":"unix/%s"},"storage":{"module":"file_system","root":"%s"},"apps":{"http":{"grace_period":"%s","servers":{' ${shq(PROXY.adminSocket)} ${shq(PROXY.storage)} ${shq(PROXY.gracePeriod)}`,
    `  sep=; for s in ${etc}/servers/*/; do`,
    `    s=\${s%/}; ls "$s"/routes/*.json >/dev/null 2>&1 || continue`,
    `    printf '%s"%s":' "$sep" "\${s##*/}"; sed 's/}$//' "$s/server.json"; printf ',"routes":['; join_json "$s"/routes/*.json; printf ',%s]}' ${shq(JSON.stringify(NOT_ROUTED))}; sep=,`,
    `  done`,
    `  printf '}}'`,
    `  if ls ${etc}/tls/*.json >/dev/null 2>&1; then`,
    `    printf ',"tls":{"automation":{"policies":['; sep=; seen=`,
    `    for f in ${etc}/tls/*.json; do h=\${f##*/}; h=\${h%%@*}; case " $seen " in *" $h "*) continue;; esac; seen="$seen $h"; printf '%s' "$sep"; cat "$f"; sep=,; done`,
    `    printf ']}}'`,
    `  fi`,
    `  printf '}}\\n'`,
    `}`,
  ];
}

/**
 * Assembles the proxy's whole config from the fragments and, only when it differs from the live
 * one, loads it through the admin socket (Caddy applies it atomically and gracefully) and keeps
 * it as the file the proxy boots with. A config the proxy refuses changes nothing: the previous
 * file stays, the error is printed, and the script exits `failExit`.
 */
export function proxyLoadLines(failExit: number): string[] {
  const etc = shq(PROXY.etc);
  return [
    ...proxyConfigLines(),
    `proxy_load() {`,
    `  mkdir -p ${etc}/servers ${etc}/tls`,
    `  proxy_config > ${shq(`${PROXY.config}.fleet-tmp`)}`,
    `  if cmp -s ${shq(`${PROXY.config}.fleet-tmp`)} ${shq(PROXY.config)} && systemctl is-active --quiet ${PROXY.unit}; then rm -f ${shq(`${PROXY.config}.fleet-tmp`)}; echo proxy_changed=0; return 0; fi`,
    `  systemctl is-active --quiet ${PROXY.unit} || systemctl start ${PROXY.unit} || { echo "the proxy (${PROXY.unit}) does not start: bootstrap the host with proxy on (systemctl status ${PROXY.unit})" >&2; exit ${failExit}; }`,
    // Until its admin API answers: a proxy restarting (killed, Restart=always) leaves its old socket file behind.
    `  i=0; until curl -sf -o /dev/null --max-time 1 --unix-socket ${shq(PROXY.adminSocket)} -H 'Host: ' http://fleet-proxy/config/ 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done`,
    `  out=$(curl -sS --unix-socket ${shq(PROXY.adminSocket)} -H 'Host: ' -H 'Content-Type: application/json' -X POST --data-binary @${shq(`${PROXY.config}.fleet-tmp`)} -w '\\n%{http_code}' http://fleet-proxy/load 2>&1) || true`,
    `  if [ "\${out##*\${NL}}" != 200 ]; then rm -f ${shq(`${PROXY.config}.fleet-tmp`)}; echo "the proxy refused its new config: \${out%\${NL}*}" >&2; exit ${failExit}; fi`,
    `  chmod 644 ${shq(`${PROXY.config}.fleet-tmp`)}; mv -f ${shq(`${PROXY.config}.fleet-tmp`)} ${shq(PROXY.config)}; echo proxy_changed=1`,
    `}`,
    `NL='`,
    `'`,
  ];
}

/**
 * Picks the instance's port: the first in the range, from a per-service offset (so that services
 * on one host rarely probe the same ports), that no process listens on and no instance of this
 * service has. Sets `$port`, or exits `failExit` when the range is full.
 */
export function allocatePortLines(service: string, range: ProxySpec["instancePorts"], failExit: number): string[] {
  const size = range.to - range.from + 1;
  let offset = 0;
  for (const c of service) offset = (offset * 31 + c.charCodeAt(0)) % size;
  return [
    `port=; n=0; while [ $n -lt ${size} ]; do`,
    `  p=$(( ${range.from} + (${offset} + n) % ${size} ))`,
    `  if [ ! -e "$D/shared/instances/$p.env" ] && ! ss -Htln "sport = :$p" | grep -q .; then port=$p; break; fi`,
    `  n=$((n + 1))`,
    `done`,
    `[ -n "$port" ] || { echo "no free instance port in ${range.from}-${range.to} on this host (proxy.instancePorts)" >&2; exit ${failExit}; }`,
  ];
}

/** The switch: one rename of the stable socket symlink, then the serving port recorded. */
export function flipLines(serviceDir: string, portWord: string): string[] {
  const p = proxyLayout(serviceDir);
  return [
    `mkdir -p ${shq(p.socketDir)}`,
    `ln -sfn "${portWord}.sock" ${shq(`${p.socketDir}/.current.tmp`)} && mv -Tf ${shq(`${p.socketDir}/.current.tmp`)} ${shq(p.currentSocket)}`,
    `printf '%s\\n' "${portWord}" > ${shq(`${p.servingFile}.tmp`)} && mv -f ${shq(`${p.servingFile}.tmp`)} ${shq(p.servingFile)}`,
  ];
}

/**
 * Drains the instance on `$old`: waits until no connection to its port is open (requests in
 * flight have finished; none can start, since routes dial the switched symlink), for at most
 * `drainTimeoutMs`, then stops it and its socket and removes its files.
 */
export function drainLines(unitName: string, drainTimeoutMs: number): string[] {
  const tenths = Math.ceil(Math.max(0, drainTimeoutMs) / 100);
  return [
    `if [ -n "$old" ]; then`,
    `  i=0; while ss -Htn state established "( dport = :$old )" | grep -q . && [ $i -lt ${tenths} ]; do sleep 0.1; i=$((i + 1)); done`,
    `  [ $i -lt ${tenths} ] || echo "drain_timeout=$old"`,
    `  systemctl disable --now ${shq(unitName)}@"$old".service ${shq(unitName)}-sock@"$old".socket ${shq(unitName)}-sock@"$old".service 2>/dev/null || true`,
    `  rm -f "$D/shared/instances/$old.env" "$D/instances/$old"`,
    `  echo "drained=$old"`,
    `fi`,
  ];
}

/** The env file of one instance: the service's, plus the port fleet allocated. */
export function instanceEnvLines(envFile: string): string[] {
  return [
    `mkdir -p "$D/shared/instances" "$D/instances"`,
    `(umask 077 && { ${emitBytes(envFile)}; printf 'PORT=%s\\n' "$port"; } > "$D/shared/instances/$port.env")`,
  ];
}
