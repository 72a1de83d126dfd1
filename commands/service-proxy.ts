/**
 * The steps of a deploy behind the host's proxy (issue #19, docs/zero-downtime.md): the new
 * release starts as its own instance beside the serving one, its gate is probed on its own port,
 * and only a passed gate switches the proxy to it; the old instance then drains. Pure builders;
 * quoting via commands/quote.ts, the proxy's own pieces in commands/proxy.ts.
 *
 * What `.rollback/` holds in this mode: `current` (the serving release), `port` (the serving
 * instance's port, "" for none), `new_port` (the instance this attempt started), `routes.tar`
 * (this service's route fragments as they were) and `units/` (the template units as they were).
 */
import { createHash } from "crypto";
import { emitBytes, shq } from "./quote";
import { UNIT_MARKER, releaseDir, type ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import type { ProxySpec } from "../model/proxy";
import { EXIT, lockIs, probeLines, RECORD_SCRIPT, type ProbeTarget } from "./service-shell";
import { commitFactLine } from "./release-marks";
import {
  PROXY,
  allocatePortLines,
  drainLines,
  flipLines,
  instanceEnvLines,
  instanceSocketUnits,
  proxyLayout,
  proxyLoadLines,
  removeRouteLines,
  writeRouteLines,
} from "./proxy";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function proxyOf(spec: ServiceSpec): ProxySpec {
  if (!spec.proxy) throw new Error(`service ${spec.name} is not behind the proxy`);
  return spec.proxy;
}

/** `<unit>@<port>` and its socket, as shell words (`portWord` is e.g. `"$port"`). */
export function instanceUnits(spec: Pick<ServiceSpec, "unitName">, portWord: string) {
  const u = shq(spec.unitName);
  return {
    instance: `${u}@${portWord}.service`,
    socket: `${u}-sock@${portWord}.socket`,
    forwarder: `${u}-sock@${portWord}.service`,
  };
}

/** The path (and query) of a health URL: what is probed on an instance's own port. */
export function pathOf(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

/** The gate's probe of the instance on `portWord`: the health URL's path on 127.0.0.1. */
export function instanceProbeTarget(spec: Pick<ServiceSpec, "health" | "unitName">, portWord: string): ProbeTarget {
  const on = (url: string) => `"http://127.0.0.1:${portWord}"${shq(pathOf(url))}`;
  return {
    url: on(spec.health.url),
    ...(spec.health.version ? { versionUrl: on(spec.health.version.url) } : {}),
    unit: instanceUnits(spec, portWord).instance,
  };
}

/** The template units a service behind the proxy runs with: its instances, their sockets and forwarders. */
function templateUnits(spec: ServiceSpec, layout: ServiceLayout): { file: string; name: string; content: string }[] {
  const sock = instanceSocketUnits(spec.unitName, layout.dir);
  return [
    { file: layout.instanceUnitFile, name: "instance", content: spec.unit },
    { file: layout.socketUnitFile, name: "socket", content: sock.socket },
    { file: layout.forwarderUnitFile, name: "forwarder", content: sock.service },
  ];
}

/** This service's route fragments, relative to the proxy's config dir (for tar). */
function routeFragmentsFind(service: string): string {
  return `find servers tls \\( -path ${shq(`servers/*/routes/[0-9][0-9][0-9]-[01]-${service}.json`)} -o -path ${shq(`tls/*@${service}.json`)} \\) 2>/dev/null`;
}

/**
 * The activation behind the proxy, after stage and migrate: saves what a rollback puts back,
 * starts the watchdog, then starts the release as a new instance on a free port and probes its
 * gate there. Neither `current` nor the proxy changes: whatever the gate says, users still reach
 * the serving instance. The switch is `proxySwitchScript`, run only for a passed gate.
 */
export function proxyActivateLines(
  spec: ServiceSpec,
  layout: ServiceLayout,
  plan: { readonly envFile: string },
  watchdogLines: readonly string[],
): string[] {
  const proxy = proxyOf(spec);
  const p = proxyLayout(layout.dir);
  const units = instanceUnits(spec, `"$port"`);
  const differs = (file: string, content: string) =>
    `{ [ ! -f ${shq(file)} ] || [ "$(sha256sum < ${shq(file)} | cut -c1-64)" != ${shq(sha256(content))} ]; }`;
  return [
    "phase switch",
    `rm -rf "$D/.rollback"; mkdir -m 700 "$D/.rollback" "$D/.rollback/units"`,
    `prev=$(readlink "$D/current" 2>/dev/null || true)`,
    `if [ -n "$prev" ]; then printf '%s' "$prev" > "$D/.rollback/current"; fi`,
    `old=$(cat ${shq(p.servingFile)} 2>/dev/null || true); printf '%s' "$old" > "$D/.rollback/port"`,
    `if [ -d ${shq(PROXY.etc)} ]; then (cd ${shq(PROXY.etc)} && ${routeFragmentsFind(spec.name)} | tar -cf "$D/.rollback/routes.tar" -T -); fi`,
    ...templateUnits(spec, layout).map(
      (u) => `if [ -f ${shq(u.file)} ]; then cp -p ${shq(u.file)} "$D/.rollback/units/${u.name}"; fi`,
    ),
    `: > "$D/.rollback/saved"`,
    ...watchdogLines,
    ...allocatePortLines(spec.name, proxy.instancePorts, EXIT.proxyFailed),
    `printf '%s' "$port" > "$D/.rollback/new_port"`,
    ...instanceEnvLines(plan.envFile),
    `units_changed=0`,
    ...templateUnits(spec, layout).map(
      (u) =>
        `if ${differs(u.file, u.content)}; then (umask 022 && ${emitBytes(u.content)} > ${shq(`${u.file}.fleet-tmp`)}) && mv -f ${shq(`${u.file}.fleet-tmp`)} ${shq(u.file)}; units_changed=1; fi`,
    ),
    `if [ $units_changed = 1 ]; then systemctl daemon-reload; echo unit_changed=1; fi`,
    `ln -sfn ${shq(releaseDir(layout, spec.releaseId))} "$D/instances/$port"`,
    `mark_set ${shq(spec.releaseId)} activated "$(date +%s%3N)"`,
    `echo "previous=\${prev##*/}"`,
    `if [ -n "$prev" ]; then ${commitFactLine("previous_commit", '"${prev##*/}"')}; fi`,
    `echo "instance_port=$port"`,
    "phase restart",
    `started=$(date +%s)`,
    `if ! out=$(systemctl enable --quiet --now ${units.socket} 2>&1 && systemctl enable --quiet --now ${units.instance} 2>&1); then`,
    `  echo "$out" >&2; systemctl status ${units.instance} --no-pager -n 20 >&2 || true; exit ${EXIT.restartFailed}`,
    `fi`,
    `eval "$(systemctl show -p NRestarts -p MainPID ${units.instance} | sed 's/^NRestarts=/base=/; s/^MainPID=/pid=/')"`,
    `echo "restarts=$base"`,
    ...probeLines(spec, instanceProbeTarget(spec, "$port")),
    "",
  ];
}

/** Whether a request for `path` reaches this route (its prefix): only then is the switch probed through the proxy. */
export function routeServesPath(routePath: string, path: string): boolean {
  const prefix = routePath.replace(/\/+$/, "");
  return prefix === "" || path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`);
}

/**
 * One probe of the health URL's path through the proxy, as users reach it (its host name, TLS),
 * polled until the gate's timeout: proof that the route and the switched socket serve. Skipped
 * in maintenance (the proxy answers 503 on purpose) and when the health path is outside the
 * route's prefix. TLS is not verified here (an internal CA is not in curl's store).
 */
function proxyProbeLines(spec: ServiceSpec, proxy: ProxySpec): string[] {
  const path = pathOf(spec.health.url);
  if (proxy.maintenance || !routeServesPath(proxy.path, path.split("?")[0]!)) return ["echo proxy_probe=skipped"];
  const addr = proxy.listen || "127.0.0.1";
  const name = proxy.hosts[0]?.replace(/^\*\./, "fleet-probe.") ?? addr;
  const scheme = proxy.tls === "off" ? "http" : "https";
  const url = `${scheme}://${name.includes(":") ? `[${name}]` : name}:${proxy.port}${path}`;
  const resolve = proxy.hosts.length ? `--resolve ${shq(`${name}:${proxy.port}:${addr}`)} ` : "";
  const expect = shq(String(spec.health.expectStatus));
  return [
    "phase proxy",
    `deadline=$(( $(date +%s%3N) + ${Math.max(1000, Math.floor(spec.health.timeoutMs))} ))`,
    `while :; do`,
    `  code=$(curl -gsk -o /dev/null -w '%{http_code}' --max-time 2 ${resolve}${shq(url)} 2>/dev/null || true)`,
    `  [ "$code" = ${expect} ] && break`,
    `  [ "$(date +%s%3N)" -lt "$deadline" ] || { echo ${shq(`through the proxy, ${url} answered HTTP `)}"$code"${shq(` (expected ${spec.health.expectStatus}); the switch is undone`)} >&2; exit ${EXIT.proxyFailed}; }`,
    `  sleep 0.1`,
    `done`,
    `echo "proxy_status=$code"`,
  ];
}

/**
 * The switch, for an instance whose gate passed: this service's route into the proxy (a config
 * load only when the route changed), then one rename of the socket symlink the route dials, then
 * `current`. Probes once through the proxy. Recorded like every script of the deploy, so that the
 * watchdog stops it before reverting. The old instance keeps running until finalize drains it.
 */
export function proxySwitchScript(spec: ServiceSpec, layout: ServiceLayout, token: string): string {
  const proxy = proxyOf(spec);
  return [
    `if ! ${lockIs(token)}; then echo lock_lost=1; echo "last=$(tail -n 1 ${shq(layout.auditLog)} 2>/dev/null)"; exit ${EXIT.lockLost}; fi`,
    RECORD_SCRIPT,
    "phase switch",
    `port=$(cat "$D/.rollback/new_port")`,
    ...writeRouteLines(spec.name, layout.dir, proxy),
    ...proxyLoadLines(EXIT.proxyFailed),
    "proxy_load",
    ...flipLines(layout.dir, "$port"),
    `ln -sfn ${shq(`releases/${spec.releaseId}`)} "$D/.current.tmp" && mv -Tf "$D/.current.tmp" "$D/current"`,
    `echo switched=1`,
    ...proxyProbeLines(spec, proxy),
    "",
  ].join("\n");
}

/**
 * Finalize's part behind the proxy, once the release serves: the old instances drain and stop.
 * A service that moved here from restart mode had its plain unit serving until the switch:
 * that unit is retired now.
 */
export function proxyDrainLines(spec: ServiceSpec, layout: ServiceLayout): string[] {
  const proxy = proxyOf(spec);
  const unitFile = shq(layout.unitFile);
  return [
    "phase drain",
    `new=$(cat "$D/.rollback/new_port" 2>/dev/null || true)`,
    // Every instance but the serving one: the one switched from, and any a deploy that died
    // during its drain left running.
    `for l in "$D"/instances/*; do [ -e "$l" ] || [ -L "$l" ] || continue; old=\${l##*/}; [ "$old" != "$new" ] || continue`,
    ...drainLines(spec.unitName, proxy.drainTimeoutMs).map((l) => `  ${l}`),
    `done`,
    `if [ -f ${unitFile} ] && grep -qxF ${shq(UNIT_MARKER)} ${unitFile}; then`,
    `  systemctl disable --now ${shq(spec.unitName)}.service 2>/dev/null || true; rm -f ${unitFile} ${shq(layout.envFile)}; systemctl daemon-reload; echo retired_unit=1`,
    `fi`,
  ];
}

/**
 * Puts back what a proxy activation saved: this service's routes, the socket symlink (to the
 * old instance, still running), the template units and `current`; then stops the new instance
 * and removes its files. Prints `restored=<release>|nothing`, and with `probe`, the restored
 * instance's probe. Shared by the deploying side's rollback, the watchdog and a takeover
 * (commands/restore.ts). After a first deploy behind the proxy the route is removed; a plain
 * unit that still served (a move from restart mode) keeps serving.
 */
export function proxyRestoreLines(
  spec: ServiceSpec,
  layout: ServiceLayout,
  options: { unstage?: boolean; probe: boolean },
): string[] {
  const p = proxyLayout(layout.dir);
  const next = instanceUnits(spec, `"$new"`);
  const back = instanceUnits(spec, `"$old"`);
  return [
    `new=$(cat "$D/.rollback/new_port" 2>/dev/null || true); old=$(cat "$D/.rollback/port" 2>/dev/null || true)`,
    `[ "$new" != "$old" ] || new=`,
    `failed=; [ -z "$new" ] || failed=$(readlink "$D/instances/$new" 2>/dev/null || true)`,
    // Routes as they were: the old instance's users see no change at all.
    ...removeRouteLines(spec.name),
    `if [ -f "$D/.rollback/routes.tar" ]; then tar -xf "$D/.rollback/routes.tar" -C ${shq(PROXY.etc)}; fi`,
    ...proxyLoadLines(EXIT.proxyFailed),
    `if [ -d ${shq(PROXY.etc)} ]; then ( proxy_load ) || echo proxy_restore_failed=1; fi`,
    `if [ -n "$old" ]; then`,
    ...flipLines(layout.dir, "$old").map((l) => `  ${l}`),
    `else rm -f ${shq(p.currentSocket)} ${shq(p.servingFile)}; fi`,
    `units_changed=0`,
    ...templateUnits(spec, layout).map(
      (u) =>
        `if [ -f "$D/.rollback/units/${u.name}" ] && ! cmp -s "$D/.rollback/units/${u.name}" ${shq(u.file)}; then cp -p "$D/.rollback/units/${u.name}" ${shq(u.file)}; units_changed=1; fi`,
    ),
    `if [ -f "$D/.rollback/current" ]; then`,
    `  ln -sfn "$(cat "$D/.rollback/current")" "$D/.current.tmp" && mv -Tf "$D/.current.tmp" "$D/current"`,
    `else rm -f "$D/current"; fi`,
    `if [ -n "$new" ]; then`,
    `  systemctl disable --now ${next.instance} ${next.socket} ${next.forwarder} 2>/dev/null || true`,
    `  rm -f "$D/shared/instances/$new.env" "$D/instances/$new"`,
    `fi`,
    `if [ $units_changed = 1 ]; then systemctl daemon-reload; fi`,
    // The failed release sorts oldest, so retention prunes it first; its files stay as evidence.
    `if [ -n "$failed" ] && [ "$D/$(cat "$D/.rollback/current" 2>/dev/null)" != "$failed" ] && [ -d "$failed" ]; then`,
    options.unstage
      ? `  mark_clear "\${failed##*/}" staged; mark_clear "\${failed##*/}" activated`
      : `  mark_set "\${failed##*/}" activated 0`,
    `fi`,
    `if [ -f "$D/.rollback/current" ]; then`,
    `  prev=$(readlink "$D/current"); echo "restored=\${prev##*/}"`,
    `  ${commitFactLine("restored_commit", '"${prev##*/}"')}`,
    ...(options.probe
      ? [
          `  started=$(date +%s)`,
          `  if [ -n "$old" ]; then`,
          `    systemctl is-active --quiet ${back.instance} || systemctl start ${back.instance} || true`,
          `    pid=$(systemctl show -p MainPID --value ${back.instance}); echo "restarts=$(systemctl show -p NRestarts --value ${back.instance})"`,
          ...probeLines(spec, instanceProbeTarget(spec, "$old")).map((l) => `    ${l}`),
          `  else`,
          `    pid=$(systemctl show -p MainPID --value ${shq(spec.unitName)}.service); echo "restarts=$(systemctl show -p NRestarts --value ${shq(spec.unitName)}.service)"`,
          ...probeLines(spec).map((l) => `    ${l}`),
          `  fi`,
        ]
      : []),
    `else`,
    `  echo restored=nothing`,
    `fi`,
  ];
}

/** Refresh behind the proxy: the serving instance's state and health. */
export function proxyReadLines(spec: ServiceSpec, layout: ServiceLayout): string[] {
  const p = proxyLayout(layout.dir);
  const serving = instanceUnits(spec, `"$sp"`);
  const target = instanceProbeTarget(spec, "$sp");
  return [
    `sp=$(cat ${shq(p.servingFile)} 2>/dev/null || true)`,
    `echo "instance_port=$sp"`,
    `if [ -n "$sp" ]; then echo "active=$(systemctl is-active ${serving.instance} 2>/dev/null || true)"; else echo active=inactive; fi`,
    `if [ -n "$sp" ]; then echo "health_status=$(curl -gs -o /dev/null -w '%{http_code}' --max-time 2 ${target.url} || true)"; else echo health_status=000; fi`,
  ];
}

/** Delete behind the proxy: every instance stops, the template units and the routes go. */
export function proxyDeleteLines(spec: ServiceSpec, layout: ServiceLayout): string[] {
  const each = instanceUnits(spec, `"$ip"`);
  return [
    `for l in "$D"/instances/*; do [ -e "$l" ] || [ -L "$l" ] || continue; ip=\${l##*/}`,
    `  systemctl disable --now ${each.instance} ${each.socket} ${each.forwarder} 2>/dev/null || true`,
    `done`,
    ...templateUnits(spec, layout).map(
      (u) => `if [ -f ${shq(u.file)} ] && grep -qF ${shq(UNIT_MARKER)} ${shq(u.file)}; then rm -f ${shq(u.file)}; fi`,
    ),
    `systemctl daemon-reload`,
    ...removeRouteLines(spec.name),
    ...proxyLoadLines(EXIT.proxyFailed),
    `if [ -d ${shq(PROXY.etc)} ] && systemctl is-active --quiet ${PROXY.unit}; then ( proxy_load ) || echo proxy_unload_failed=1; fi`,
  ];
}
